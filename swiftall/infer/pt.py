"""The PyTorch engine: transformers generate, batched with left padding, optional LoRA adapters."""
from __future__ import annotations

import threading
from typing import Any, Iterator, Optional, Sequence

from ..models import ModelInfo, load_model, load_tokenizer, resolve_model
from ..templates import Encoded, Template, get_template
from ..tuners import attach_adapters
from ..utils.errors import ConfigError
from .engine import Engine, InferRequest, InferResponse, RequestConfig


class PtEngine(Engine):
    def __init__(self, model: Any, tokenizer: Any, template: Template, max_batch_size: int = 16,
                 default_config: Optional[RequestConfig] = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.template = template
        self.max_batch_size = max_batch_size
        self.default_config = default_config or RequestConfig()
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, model: str | None = None, adapters: Sequence[str] = (), model_type: str | None = None,
                        hub: str = "huggingface", torch_dtype: str = "auto", attn_impl: str | None = None,
                        system: str | None = None, max_length: int | None = None, max_batch_size: int = 16,
                        trust_remote_code: bool = False, default_config: Optional[RequestConfig] = None,
                        info: Optional[ModelInfo] = None) -> "PtEngine":
        info = info or resolve_model(model, model_type, hub=hub)
        tokenizer = load_tokenizer(info, trust_remote_code)
        weights = load_model(info, torch_dtype, attn_impl, trust_remote_code)
        weights = attach_adapters(weights, adapters)
        template = get_template(tokenizer, info, system=system, max_length=max_length, truncation_strategy="left")
        return cls(weights, tokenizer, template, max_batch_size, default_config)

    # ---- generation ---------------------------------------------------------------------------
    def _generation_kwargs(self, config: RequestConfig) -> dict[str, Any]:
        from transformers import GenerationConfig

        gen = GenerationConfig.from_dict(self.model.generation_config.to_dict())
        gen.max_new_tokens = config.max_new_tokens
        gen.pad_token_id = self.tokenizer.pad_token_id
        eos = {self.tokenizer.eos_token_id}
        if gen.eos_token_id is not None:
            eos |= set(gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id])
        gen.eos_token_id = sorted(e for e in eos if e is not None)
        if config.temperature is not None:
            gen.do_sample = config.temperature > 0
            if gen.do_sample:
                gen.temperature = config.temperature
        if not gen.do_sample:
            gen.temperature, gen.top_p, gen.top_k = None, None, None
        else:
            gen.top_p = config.top_p if config.top_p is not None else gen.top_p
            gen.top_k = config.top_k if config.top_k is not None else gen.top_k
        if config.repetition_penalty is not None:
            gen.repetition_penalty = config.repetition_penalty
        if config.stop:
            gen.stop_strings = list(config.stop)
        return {"generation_config": gen, "tokenizer": self.tokenizer if config.stop else None}

    def _batch(self, prompts: list[Encoded]) -> dict[str, Any]:
        """Left-padded ids plus any extra model inputs of the template (stacked along the batch)."""
        import torch

        extras = _merge_extras([p.extra for p in prompts])
        prompts = [p.input_ids for p in prompts]
        longest = max(len(p) for p in prompts)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(prompts), longest), pad, dtype=torch.long)
        mask = torch.zeros((len(prompts), longest), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, longest - len(p):] = torch.tensor(p)
            mask[i, longest - len(p):] = 1
        device = next(self.model.parameters()).device
        extras = {k: v.to(device) if hasattr(v, "to") else v for k, v in extras.items()}
        return {"input_ids": ids.to(device), "attention_mask": mask.to(device), **extras}

    def _encode(self, request: InferRequest) -> Encoded:
        media = {"images": request.images, "audios": request.audios, "videos": request.videos}
        return self.template.encode_for_generation(request.messages, tools=request.tools,
                                                   media={k: v for k, v in media.items() if v} or None)

    def infer(self, requests: list[Any], config: Optional[RequestConfig] = None) -> list[InferResponse]:
        import torch

        config = config or self.default_config
        reqs = [InferRequest.coerce(r) for r in requests]
        results: list[Optional[InferResponse]] = [None] * len(reqs)
        for start in range(0, len(reqs), self.max_batch_size):
            by_adapter: dict[Optional[str], list[tuple[int, InferRequest]]] = {}
            for i in range(start, min(start + self.max_batch_size, len(reqs))):
                by_adapter.setdefault(reqs[i].adapter, []).append((i, reqs[i]))
            for adapter, items in by_adapter.items():
                prompts = [self._encode(r) for _, r in items]
                with self._lock, torch.inference_mode():
                    self._set_adapter(adapter)
                    if config.seed is not None:
                        torch.manual_seed(config.seed)
                    batch = self._batch(prompts)
                    generated = self.model.generate(**batch, **self._generation_kwargs(config))
                new = generated[:, batch["input_ids"].shape[1]:].tolist()
                for (i, _), prompt, row in zip(items, prompts, new):
                    results[i] = self._response(row, len(prompt.input_ids), config)
        return results  # type: ignore[return-value]

    def _response(self, tokens: list[int], prompt_len: int, config: RequestConfig) -> InferResponse:
        eos = set(self._generation_kwargs(config)["generation_config"].eos_token_id)
        pad = self.tokenizer.pad_token_id
        ended = False
        kept = []
        for t in tokens:
            if t in eos:
                ended = True
                break
            kept.append(t)
        while kept and kept[-1] == pad and pad not in eos:
            kept.pop()
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        for stop in config.stop:
            if stop in text:
                text, ended = text[: text.index(stop)], True
        return InferResponse(text=text, finish_reason="stop" if ended else "length", prompt_tokens=prompt_len,
                             completion_tokens=len(kept) + (1 if ended else 0))

    def stream(self, request: Any, config: Optional[RequestConfig] = None) -> Iterator[str]:
        import torch
        from transformers import TextIteratorStreamer

        config = config or self.default_config
        req = InferRequest.coerce(request)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        batch = self._batch([self._encode(req)])

        def run() -> None:
            with self._lock, torch.inference_mode():
                self._set_adapter(req.adapter)
                if config.seed is not None:
                    torch.manual_seed(config.seed)
                self.model.generate(**batch, streamer=streamer, **self._generation_kwargs(config))

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        yield from streamer
        thread.join()

    def _set_adapter(self, name: Optional[str]) -> None:
        if not hasattr(self.model, "peft_config"):
            if name:
                raise ConfigError(f"adapter '{name}' requested but this engine has no adapters loaded")
            return
        names = list(self.model.peft_config)
        if name and name not in names:
            raise ConfigError(f"unknown adapter '{name}'; loaded: {', '.join(names)}")
        self.model.set_adapter(name or names[0])


def _merge_extras(extras: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-request model inputs -> one batch: tensors are concatenated along the first dimension."""
    import torch

    keys = [k for k in extras[0] if k != "truncated_from"] if extras else []
    merged = {}
    for key in keys:
        values = [e[key] for e in extras]
        merged[key] = torch.cat(values) if all(torch.is_tensor(v) for v in values) else values
    return merged

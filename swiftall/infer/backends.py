"""vLLM, SGLang and LMDeploy behind the Engine interface, each imported only when chosen.

Prompts are encoded by swiftall's own template (the one used in training) and handed over as token ids (vLLM,
SGLang) or as the rendered text with the backend's own chat templating turned off (LMDeploy), so every backend
answers the same prompt. The translation of settings and outputs is in plain functions, tested without the
backends installed.
"""
from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence

from ..utils.optional import require
from .engine import BASE_MODEL, Engine, InferRequest, InferResponse, RequestConfig, TokenLogprob
from .llama_cpp import LlamaCppEngine


# ---- settings translation -----------------------------------------------------------------------------
def _common(config: RequestConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if config.temperature is not None:
        out["temperature"] = config.temperature
    if config.top_p is not None:
        out["top_p"] = config.top_p
    if config.top_k is not None:
        out["top_k"] = config.top_k
    if config.repetition_penalty is not None:
        out["repetition_penalty"] = config.repetition_penalty
    return out


def vllm_sampling_kwargs(config: RequestConfig) -> dict[str, Any]:
    """RequestConfig -> keyword arguments of `vllm.SamplingParams`."""
    out = {"max_tokens": config.max_new_tokens, "n": config.n, **_common(config)}
    if config.stop:
        out["stop"] = list(config.stop)
    if config.stop_token_ids:
        out["stop_token_ids"] = list(config.stop_token_ids)
    if config.seed is not None:
        out["seed"] = config.seed
    if config.logprobs or config.top_logprobs:
        out["logprobs"] = max(config.top_logprobs, 0)
    if config.ignore_eos:
        out["ignore_eos"] = True  # vLLM: the chosen token plus this many alternatives
    return out


def sglang_sampling_params(config: RequestConfig) -> dict[str, Any]:
    """RequestConfig -> SGLang's `sampling_params` dict (Engine.generate)."""
    out = {"max_new_tokens": config.max_new_tokens, "n": config.n, **_common(config)}
    if config.stop:
        out["stop"] = list(config.stop)
    if config.stop_token_ids:
        out["stop_token_ids"] = list(config.stop_token_ids)
    return out


def lmdeploy_gen_kwargs(config: RequestConfig) -> dict[str, Any]:
    """RequestConfig -> keyword arguments of `lmdeploy.GenerationConfig`."""
    out = {"max_new_tokens": config.max_new_tokens, "n": config.n, **_common(config)}
    if config.stop:
        out["stop_words"] = list(config.stop)
    if config.stop_token_ids:
        out["stop_token_ids"] = list(config.stop_token_ids)
    if config.seed is not None:
        out["random_seed"] = config.seed
    if config.logprobs or config.top_logprobs:
        out["logprobs"] = max(config.top_logprobs, 1)
    return out


# ---- output translation -------------------------------------------------------------------------------
def from_vllm_output(output: Any, decode: Any = None) -> InferResponse:
    """A vLLM `RequestOutput` -> InferResponse (the other n-1 answers in `.choices`)."""
    answers = []
    for choice in output.outputs:
        logprobs = None
        if choice.logprobs:
            logprobs = []
            for token, alternatives in zip(choice.token_ids, choice.logprobs):
                chosen = alternatives[token]
                ranked = sorted(alternatives.items(), key=lambda kv: -kv[1].logprob)
                top = [(lp.decoded_token or (decode([t]) if decode else str(t)), lp.logprob) for t, lp in ranked]
                logprobs.append(TokenLogprob(chosen.decoded_token or "", chosen.logprob, top))
        answers.append(InferResponse(text=choice.text, finish_reason=_finish(choice.finish_reason),
                                     prompt_tokens=len(output.prompt_token_ids or []),
                                     completion_tokens=len(choice.token_ids), logprobs=logprobs,
                                     token_ids=list(choice.token_ids)))
    first, *others = answers
    first.choices = others
    return first


def from_sglang_output(output: Any) -> InferResponse:
    """SGLang `Engine.generate` result (a dict, or a list of dicts when n > 1) -> InferResponse."""
    items = output if isinstance(output, list) else [output]
    answers = []
    for item in items:
        meta = item.get("meta_info", {})
        reason = meta.get("finish_reason") or {}
        reason = reason.get("type") if isinstance(reason, dict) else reason
        answers.append(InferResponse(text=item["text"], finish_reason=_finish(reason),
                                     prompt_tokens=int(meta.get("prompt_tokens", 0)),
                                     completion_tokens=int(meta.get("completion_tokens", 0))))
    first, *others = answers
    first.choices = others
    return first


def from_lmdeploy_output(output: Any) -> InferResponse:
    """An LMDeploy `Response` -> InferResponse."""
    return InferResponse(text=output.text, finish_reason=_finish(output.finish_reason),
                         prompt_tokens=int(output.input_token_len or 0),
                         completion_tokens=int(output.generate_token_len or 0))


def _finish(reason: Optional[str]) -> str:
    return "length" if reason == "length" else "stop"


# ---- engines ------------------------------------------------------------------------------------------
class _TemplatedEngine(Engine):
    """Shared: encode requests with swiftall's template; adapters by name."""

    template: Any
    adapters: dict[str, str]

    def _prompt_ids(self, request: Any) -> list[int]:
        req = InferRequest.coerce(request)
        if req.prompt_ids is not None:
            return list(req.prompt_ids)
        if req.prompt is not None:
            return self.template.tokenizer(req.prompt, add_special_tokens=True)["input_ids"]
        ids = self.template.encode_prompt(req.messages, tools=req.tools)
        if req.prefill:
            ids = ids + self.template.tokenizer(req.prefill, add_special_tokens=False)["input_ids"]
        return ids

    def _adapter_path(self, request: Any) -> tuple[Optional[str], Optional[str]]:
        name = InferRequest.coerce(request).adapter
        if not self.adapters or name == BASE_MODEL:
            return None, None
        name = name or next(iter(self.adapters))
        if name not in self.adapters:
            from ..utils.errors import ConfigError

            raise ConfigError(f"unknown adapter '{name}'; loaded: {', '.join(self.adapters)}")
        return name, self.adapters[name]

    def stream(self, request: Any, config: Optional[RequestConfig] = None) -> Iterator[str]:
        yield self.infer([request], config)[0].text  # offline engines answer whole; the server streams via pt


def _named(adapters: Sequence[str]) -> dict[str, str]:
    from ..tuners.runs import parse_adapters, start_adapters

    specs = parse_adapters(adapters)
    if specs and start_adapters(specs):
        from ..utils.errors import ConfigError

        raise ConfigError("--adapters: these runs were trained on a base with an sft adapter merged in; this backend "
                          "loads adapters over the plain base: merge first (swiftall export --adapters RUN "
                          "--merge_lora true) and serve --model MERGED")
    return {spec.name: str(spec.path) for spec in specs}


class VllmEngine(_TemplatedEngine):
    def __init__(self, model_dir: str, template: Any, adapters: Sequence[str] = (), max_batch_size: int = 256,
                 max_model_len: Optional[int] = None, default_config: Optional[RequestConfig] = None, **engine_kwargs):
        vllm = require("vllm", "vllm", "--infer_backend vllm")
        self.template, self.adapters = template, _named(adapters)
        self.default_config = default_config or RequestConfig()
        self.llm = vllm.LLM(model=model_dir, enable_lora=bool(self.adapters), max_num_seqs=max_batch_size,
                            max_model_len=max_model_len, **engine_kwargs)
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        self._vllm = vllm

    def infer(self, requests: list[Any], config: Optional[RequestConfig] = None) -> list[InferResponse]:
        from vllm.lora.request import LoRARequest

        params = self._vllm.SamplingParams(**vllm_sampling_kwargs(config or self.default_config))
        prompts = [{"prompt_token_ids": self._prompt_ids(r)} for r in requests]
        names = list(self.adapters)
        loras = []
        for r in requests:
            name, path = self._adapter_path(r)
            loras.append(LoRARequest(name, names.index(name) + 1, path) if name else None)
        outputs = self.llm.generate(prompts, params, lora_request=loras if any(loras) else None, use_tqdm=False)
        return [from_vllm_output(o, self.template.tokenizer.decode) for o in outputs]


class SglangEngine(_TemplatedEngine):
    def __init__(self, model_dir: str, template: Any, adapters: Sequence[str] = (), max_batch_size: int = 256,
                 default_config: Optional[RequestConfig] = None, **engine_kwargs):
        sglang = require("sglang", "sglang", "--infer_backend sglang")
        self.template, self.adapters = template, _named(adapters)
        self.default_config = default_config or RequestConfig()
        lora = {"lora_paths": [f"{k}={v}" for k, v in self.adapters.items()]} if self.adapters else {}
        self.engine = sglang.Engine(model_path=model_dir, max_running_requests=max_batch_size, **lora,
                                    **engine_kwargs)

    def infer(self, requests: list[Any], config: Optional[RequestConfig] = None) -> list[InferResponse]:
        params = sglang_sampling_params(config or self.default_config)
        out = []
        for r in requests:
            name, _ = self._adapter_path(r)
            extra = {"lora_path": name} if name else {}
            out.append(from_sglang_output(self.engine.generate(input_ids=self._prompt_ids(r), sampling_params=params,
                                                               **extra)))
        return out

    def close(self) -> None:
        self.engine.shutdown()


class LmdeployEngine(_TemplatedEngine):
    def __init__(self, model_dir: str, template: Any, adapters: Sequence[str] = (), max_batch_size: int = 256,
                 default_config: Optional[RequestConfig] = None, **engine_kwargs):
        lmdeploy = require("lmdeploy", "lmdeploy", "--infer_backend lmdeploy")
        self.template, self.adapters = template, _named(adapters)
        self.default_config = default_config or RequestConfig()
        backend = lmdeploy.PytorchEngineConfig(max_batch_size=max_batch_size, adapters=self.adapters or None,
                                               **engine_kwargs)
        self.pipe = lmdeploy.pipeline(model_dir, backend_config=backend)
        self._lmdeploy = lmdeploy

    def infer(self, requests: list[Any], config: Optional[RequestConfig] = None) -> list[InferResponse]:
        gen = self._lmdeploy.GenerationConfig(**lmdeploy_gen_kwargs(config or self.default_config))
        texts = [self.template.tokenizer.decode(self._prompt_ids(r)) for r in requests]
        names = [self._adapter_path(r)[0] for r in requests]
        out = []
        for text, name in zip(texts, names):  # one adapter per call in lmdeploy's API
            out.append(from_lmdeploy_output(self.pipe([text], gen_config=gen, do_preprocess=False,
                                                      adapter_name=name)[0]))
        return out


BACKENDS = {"vllm": VllmEngine, "sglang": SglangEngine, "lmdeploy": LmdeployEngine, "llama_cpp": LlamaCppEngine}


def build_backend(name: str, model_dir: str, template: Any, adapters: Sequence[str], max_batch_size: int,
                  default_config: RequestConfig) -> Engine:
    return BACKENDS[name](model_dir, template, adapters=adapters, max_batch_size=max_batch_size,
                          default_config=default_config)

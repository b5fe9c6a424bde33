"""The PyTorch engine: continuous batching over transformers models, per-request sampling, LoRA adapters.

Requests go through the continuous-batching scheduler (scheduler.py). Multimodal ones (their template puts pixel
values etc. in `Encoded.extra`) join the same batch: their prefill runs the family's forward with those inputs, their
decode steps are text steps (media_prefill.py). Families that cannot join (`media_prefill.unbatchable`) are answered
by `model.generate`, run as a job whose every token lets the batch take a step. Every forward -- batch steps, those
`generate` calls, embeddings -- runs on the scheduler's one thread (see worker.py).
"""
from __future__ import annotations

import asyncio
import queue
from typing import Any, AsyncIterator, Iterator, Optional, Sequence as Seq

from ..models import ModelInfo, load_model, load_tokenizer, resolve_model
from ..templates import Encoded, Template, get_template
from ..tuners import attach_adapters
from ..tuners.adapters import mixed_batches
from ..utils.aio import put_from_thread
from ..utils.errors import ConfigError
from .detok import Answer
from .engine import BASE_MODEL, Engine, InferRequest, InferResponse, RequestConfig, StreamEvent
from .media_prefill import device_inputs, media_inputs, unbatchable
from .sampling import resolve_params
from .scheduler import Scheduler, Sequence
from .worker import cancelled_rows, token_feed


class PtEngine(Engine):
    def __init__(self, model: Any, tokenizer: Any, template: Template, max_batch_size: int = 16,
                 default_config: Optional[RequestConfig] = None, max_queue: int = 256):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.template = template
        self.max_batch_size = max_batch_size
        self.default_config = default_config or RequestConfig()
        self.adapters = list(getattr(model, "peft_config", {}) or {})
        mixed = bool(self.adapters) and mixed_batches(model)
        if mixed:
            from .lora_batch import install

            install(self.model)  # one batched LoRA product per layer for rows of different adapters
        self.scheduler = Scheduler(self.model, max_batch_size, max_queue, use_adapter_names=mixed)
        self.max_model_len = _context_length(model)
        self.media_fallback = unbatchable(model)  # why media requests take `generate` (None: they join the batch)

    @classmethod
    def from_pretrained(cls, model: str | None = None, adapters: Seq[str] = (), model_type: str | None = None,
                        hub: str = "huggingface", torch_dtype: str = "auto", attn_impl: str | None = None,
                        system: str | None = None, max_length: int | None = None, max_batch_size: int = 16,
                        trust_remote_code: bool = False, default_config: Optional[RequestConfig] = None,
                        info: Optional[ModelInfo] = None, max_queue: int = 256,
                        media_options: Optional[dict[str, Any]] = None) -> "PtEngine":
        info = info or resolve_model(model, model_type, hub=hub)
        tokenizer = load_tokenizer(info, trust_remote_code)
        weights = load_model(info, torch_dtype, attn_impl, trust_remote_code)
        weights = attach_adapters(weights, adapters)
        template = get_template(tokenizer, info, system=system, max_length=max_length, truncation_strategy="left",
                                **(media_options or {}))
        return cls(weights, tokenizer, template, max_batch_size, default_config, max_queue)

    # ---- encoding -----------------------------------------------------------------------------
    def _encode(self, request: InferRequest) -> Encoded:
        """The request's prompt ids (and model inputs). A request is encoded once: the server counts its tokens
        before it runs it, and its media are fetched and processed only the first time (the encoding is kept on the
        request, with a key of what it was made from, so a request changed in between is encoded again)."""
        if request.prompt_ids is not None:
            return Encoded(list(request.prompt_ids), [])
        key = _encoding_key(request)
        kept = getattr(request, "_swiftall_encoded", None)
        if kept is not None and kept[0] == key:
            return kept[1]
        encoded = self._encode_now(request)
        request._swiftall_encoded = (key, encoded)
        return encoded

    def _encode_now(self, request: InferRequest) -> Encoded:
        if request.prompt is not None:
            return Encoded(self.tokenizer(request.prompt, add_special_tokens=True)["input_ids"], [])
        media = {"images": request.images, "audios": request.audios, "videos": request.videos}
        encoded = self.template.encode_for_generation(request.messages, tools=request.tools,
                                                      media={k: v for k, v in media.items() if v} or None)
        if request.prefill:
            encoded.input_ids = encoded.input_ids + self.tokenizer(request.prefill, add_special_tokens=False)[
                "input_ids"]
        return encoded

    def count_prompt_tokens(self, request: Any) -> Optional[int]:
        return len(self._encode(InferRequest.coerce(request)).input_ids)

    def eos_ids(self) -> set[int]:
        eos = {self.tokenizer.eos_token_id}
        configured = self.model.generation_config.eos_token_id
        eos |= set(configured if isinstance(configured, list) else [configured])
        return {e for e in eos if e is not None}

    def _adapter(self, name: Optional[str]) -> Optional[str]:
        """The adapter a request runs with: None is the first loaded adapter (if any), BASE_MODEL the base."""
        if not self.adapters:
            if name and name != BASE_MODEL:
                raise ConfigError(f"adapter '{name}' requested but this engine has no adapters loaded")
            return None
        if name and name != BASE_MODEL and name not in self.adapters:
            raise ConfigError(f"unknown adapter '{name}'; loaded: {', '.join(self.adapters)}")
        return name or self.adapters[0]

    # ---- generation through the scheduler -----------------------------------------------------
    def start(self, request: Any, config: Optional[RequestConfig] = None, emit: Any = None) -> list[Answer]:
        """Queue one request (n answers); returns their Answers, which fill in as tokens arrive. Their events go
        to one shared queue (`answers[0].events`), or to `emit` when given."""
        config = config or self.default_config
        req = InferRequest.coerce(request)
        encoded = self._encode(req)
        adapter = self._adapter(req.adapter)
        extras = media_inputs(encoded.extra)
        prompt = encoded.input_ids
        if self.max_model_len and len(prompt) >= self.max_model_len:
            raise ConfigError(f"the prompt is {len(prompt)} tokens; this model's context is {self.max_model_len}")
        max_new = config.max_new_tokens
        if self.max_model_len:
            max_new = min(max_new, self.max_model_len - len(prompt))
        eos = set() if config.ignore_eos else self.eos_ids() | set(config.stop_token_ids)
        answers, seqs, events = [], [], queue.Queue()
        for i in range(max(1, config.n)):
            answer = Answer(self.tokenizer, len(prompt), list(config.stop), eos, index=i, prefix=req.prefill or "",
                            events=events, emit=emit)
            seed = None if config.seed is None else config.seed + i
            params = resolve_params(config, self.model.generation_config, seed)
            answer.seq = Sequence(list(prompt), params, max_new, eos, answer.on_token, answer.on_finish, adapter,
                                  media=extras)
            seqs.append(answer.seq)
            answers.append(answer)
        if extras and self.media_fallback:
            self.scheduler.call(lambda: self._generate_with_extras(encoded, extras, seqs, config), seqs)
        else:
            self.scheduler.submit(seqs)
        return answers

    def infer(self, requests: list[Any], config: Optional[RequestConfig] = None) -> list[InferResponse]:
        started: list[list[Answer]] = []
        try:
            self._start_all(requests, config, started)
            for answers in started:
                for a in answers:
                    a.done.wait()
        except BaseException:  # Ctrl-C (or a bad request): the answers still generating are not wanted
            cancel_answers([a for answers in started for a in answers])
            raise
        results = []
        for answers in started:
            first, *others = [a.response() for a in answers]
            first.choices = others
            results.append(first)
        return results

    def _start_all(self, requests: list[Any], config: Optional[RequestConfig], started: list[list[Answer]],
                   emit_for: Any = None) -> None:
        """Queue every request at once (appending each one's answers to `started`), so they are prefilled together
        and their shared prompt prefix runs once: encoded first (media fetched), then queued holding the
        scheduler's lock, which it takes to pick up waiting sequences."""
        requests = [InferRequest.coerce(r) for r in requests]
        for r in requests:
            self._encode(r)
        with self.scheduler.cv:
            for i, r in enumerate(requests):
                started.append(self.start(r, config, emit=emit_for(i) if emit_for else None))

    def stream_events(self, request: Any, config: Optional[RequestConfig] = None) -> Iterator[StreamEvent]:
        """Events of all n answers, interleaved (each carries its `index`); ends when every answer has ended."""
        answers = self.start(request, config)
        events = answers[0].events  # the n answers of one request share one queue
        open_ = len(answers)
        try:
            while open_:
                event = events.get()
                if isinstance(event, BaseException):
                    raise event
                open_ -= event.finish_reason is not None
                yield event
        finally:  # a client that stops reading (disconnects), or Ctrl-C, frees its batch rows
            cancel_answers(answers)

    async def stream_async(self, request: Any, config: Optional[RequestConfig] = None) -> AsyncIterator[StreamEvent]:
        """Events straight from the scheduler thread onto the event loop (no thread per request)."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        answers = self.start(request, config, emit=put_from_thread(loop, events))
        open_ = len(answers)
        try:
            while open_:
                event = await events.get()
                if isinstance(event, BaseException):
                    raise event
                open_ -= event.finish_reason is not None
                yield event
        finally:
            cancel_answers(answers)

    async def infer_async(self, request: Any, config: Optional[RequestConfig] = None) -> InferResponse:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        answers = self.start(request, config, emit=put_from_thread(loop, events))
        open_ = len(answers)
        while open_:
            event = await events.get()
            if isinstance(event, BaseException):
                raise event
            open_ -= event.finish_reason is not None
        first, *others = [a.response() for a in answers]
        first.choices = others
        return first

    def stream(self, request: Any, config: Optional[RequestConfig] = None) -> Iterator[str]:
        for event in self.stream_events(request, config):
            if event.text:
                yield event.text

    def infer_iter(self, requests: list[Any], config: Optional[RequestConfig] = None
                   ) -> Iterator[tuple[int, InferResponse]]:
        """(index, response) of each request as soon as it is answered, all requests batched together. Closing the
        iterator early (Ctrl-C, an error) cancels the answers not finished yet."""
        finished: queue.Queue = queue.Queue()
        started: list[list[Any]] = []
        try:
            self._start_all(requests, config, started, lambda i: _on_final(finished, i))
            left = {i: len(answers) for i, answers in enumerate(started)}
            while left:
                i = finished.get()
                left[i] -= 1
                if not left[i]:
                    del left[i]
                    first, *others = [a.response() for a in started[i]]
                    first.choices = others
                    yield i, first
        finally:
            cancel_answers([a for answers in started for a in answers])

    def close(self, timeout: Optional[float] = None, cancel: bool = False) -> None:
        """Finish queued and running requests (or, with `cancel`, end them now) and stop the engine's threads."""
        self.scheduler.close(timeout, cancel=cancel)

    # ---- multimodal inputs of families that cannot join the batch (media_prefill.py): generate --
    def _generate_with_extras(self, encoded: Encoded, extras: dict, seqs: list[Sequence], config: RequestConfig):
        import torch

        try:
            device = next(self.model.parameters()).device
            ids = torch.tensor([encoded.input_ids] * len(seqs), device=device)
            inputs = device_inputs({k: (torch.cat([v] * len(seqs)) if torch.is_tensor(v) else v) for k, v in
                                    _merge_extras([extras]).items()}, device)
            kwargs = {"adapter_names": [seqs[0].adapter or BASE_MODEL] * len(seqs)} if self.adapters else {}
            # text rows step between generate's steps -- unless generate carries peft's per-row adapter hooks,
            # which stay on the shared modules for the whole call and would apply to those rows' forwards too
            feed = token_feed(seqs, None if self.adapters else self.scheduler.step_between)
            with torch.inference_mode():
                if config.seed is not None:
                    torch.manual_seed(config.seed)
                self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **inputs, **kwargs,
                                    stopping_criteria=[cancelled_rows(seqs)], streamer=feed,
                                    **self._generation_kwargs(config, seqs[0]))
            for seq in seqs:
                if seq.finish_reason is None:  # not ended by an eos or a stop string
                    seq.finish_reason = "cancelled" if seq.cancelled else "length"
                    seq.on_finish(seq, None)
        except Exception as exc:
            for seq in seqs:
                if seq.finish_reason is None:
                    seq.finish_reason = "error"
                    seq.on_finish(seq, exc)

    def _generation_kwargs(self, config: RequestConfig, seq: Sequence) -> dict[str, Any]:
        from transformers import GenerationConfig

        gen = GenerationConfig.from_dict(self.model.generation_config.to_dict())
        p = seq.params
        gen.max_new_tokens, gen.pad_token_id = seq.max_new_tokens, self.tokenizer.pad_token_id
        gen.eos_token_id = sorted(seq.eos_ids)
        gen.do_sample = p.do_sample
        gen.temperature, gen.top_p, gen.top_k = (p.temperature, p.top_p, p.top_k) if p.do_sample else (None,) * 3
        gen.repetition_penalty = p.repetition_penalty
        return {"generation_config": gen}

    # ---- embeddings ---------------------------------------------------------------------------
    def embed(self, texts: list[str], adapter: Optional[str] = None) -> list[list[float]]:
        """Mean of the last hidden layer over each text's tokens, L2-normalised (forwards on the scheduler's thread,
        between its batch steps)."""
        batch = []
        for text in texts:
            ids = self.tokenizer(text, add_special_tokens=True)["input_ids"]
            if self.max_model_len and len(ids) > self.max_model_len:
                raise ConfigError(f"an input is {len(ids)} tokens; this model's context is {self.max_model_len}")
            batch.append(ids)
        name = (self._adapter(adapter) or BASE_MODEL) if self.adapters else None
        return self.scheduler.run(lambda: self._embed_forward(batch, name))

    def _embed_forward(self, batch: list[list[int]], adapter: Optional[str]) -> list[list[float]]:
        import torch

        device = next(self.model.parameters()).device
        kwargs = {"adapter_names": [adapter]} if adapter else {}
        vectors = []
        with torch.inference_mode():
            for ids in batch:
                out = self.model(input_ids=torch.tensor([ids], device=device), output_hidden_states=True,
                                 logits_to_keep=1, **kwargs)
                vector = out.hidden_states[-1][0].float().mean(dim=0)
                vectors.append(torch.nn.functional.normalize(vector, dim=0).tolist())
        return vectors


def cancel_answers(answers: list[Any]) -> None:
    """Ask the scheduler (or the generate worker) to end these answers' sequences at their next step."""
    for a in answers:
        if a.seq is not None and a.seq.finish_reason is None:
            a.seq.cancelled = True


def _on_final(finished: queue.Queue, index: int) -> Any:
    """An Answer's `emit` that reports `index` once per answer when it ends (its final event, or an error)."""
    def emit(event: Any) -> None:
        if isinstance(event, BaseException) or event.finish_reason is not None:
            finished.put(index)
    return emit


def _encoding_key(request: InferRequest) -> tuple:
    """What a request's encoding is made from: its texts by value, media objects that are not text by identity."""
    media = tuple(tuple(m if isinstance(m, (str, bytes)) else id(m) for m in kind)
                  for kind in (request.images, request.audios, request.videos))
    return repr(request.messages), repr(request.tools), request.prompt, request.prefill, media


def _context_length(model: Any) -> Optional[int]:
    config = getattr(model, "config", None)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text, "max_position_embeddings", None)


def _merge_extras(extras: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-request model inputs -> one batch: tensors are concatenated along the first dimension."""
    import torch

    keys = [k for k in extras[0] if k != "truncated_from"] if extras else []
    merged = {}
    for key in keys:
        values = [e[key] for e in extras]
        merged[key] = torch.cat(values) if all(torch.is_tensor(v) for v in values) else values
    return merged

"""vLLM, SGLang and LMDeploy behind the Engine interface, each imported only when chosen.

Each runs through its async engine (vLLM's `AsyncLLMEngine`, SGLang's `Engine.async_generate`, LMDeploy's
`pipeline(...).generate`) on an event loop of its own (loop_engine.py): a batch's requests run concurrently and the
backend batches them; answers stream token by token; logprobs, media and a LoRA adapter per request are passed in
each backend's own request format (translation in backend_io.py, tested without the backends).

Text prompts are encoded by swiftall's own template (the one used in training) and handed over as token ids, so every
backend answers the same prompt. Requests with media are rendered by the template (media placeholders not yet
expanded) and handed over with the decoded media, which the backend's processor expands (LMDeploy: its own
vision pipeline and chat template, images only).
"""
from __future__ import annotations

import itertools
import uuid
from typing import Any, AsyncIterator, Optional, Sequence

from ..utils.aio import merge_streams
from ..utils.errors import ConfigError
from ..utils.optional import require
from .backend_io import (Deltas, from_lmdeploy_output, from_sglang_output, from_vllm_output,  # noqa: F401
                         lmdeploy_event, lmdeploy_gen_kwargs, lmdeploy_messages, sglang_event, sglang_lora_kwargs,
                         sglang_media_kwargs, sglang_sampling_params, vllm_events, vllm_lora_kwargs,
                         vllm_multi_modal_data, vllm_sampling_kwargs)
from .engine import BASE_MODEL, Engine, InferRequest, RequestConfig, StreamEvent
from .llama_cpp import LlamaCppEngine
from .loop_engine import LoopEngine


class _TemplatedEngine(LoopEngine):
    """Shared: encode requests with swiftall's template (media decoded by it), adapters by name."""

    template: Any
    adapters: dict[str, str]

    def _setup(self, template: Any, adapters: Sequence[str], default_config: Optional[RequestConfig]) -> None:
        self.template, self.adapters = template, _named(adapters)
        self.default_config = default_config or RequestConfig()
        self.decode = lambda ids: template.tokenizer.decode(ids)

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

    def _with_media(self, req: InferRequest) -> Optional[tuple[str, dict[str, list], list[dict]]]:
        """(the rendered prompt with the model's media placeholders, the decoded media, the messages with every
        media tag in place), or None without media."""
        media = {k: v for k, v in (("images", req.images), ("audios", req.audios), ("videos", req.videos)) if v}
        if not media or req.prompt is not None or req.prompt_ids is not None:
            return None
        if not hasattr(self.template, "prepare"):
            raise ConfigError("this model is text-only: its template takes no images, audio or video")
        messages, loaded = self.template.prepare(req.messages, media)
        text = self.template.render(messages, add_generation_prompt=True, tools=req.tools) + (req.prefill or "")
        if loaded.get("audios"):
            rate = self.template.media_options.sampling_rate
            loaded["audios"] = [(wave, rate) for wave in loaded["audios"]]
        return text, loaded, messages

    def count_prompt_tokens(self, request: Any) -> Optional[int]:
        req = InferRequest.coerce(request)
        return None if self._with_media(req) else len(self._prompt_ids(req))

    def _adapter_path(self, request: Any) -> tuple[Optional[str], Optional[str]]:
        name = InferRequest.coerce(request).adapter
        if not self.adapters or name == BASE_MODEL:
            return None, None
        name = name or next(iter(self.adapters))
        if name not in self.adapters:
            raise ConfigError(f"unknown adapter '{name}'; loaded: {', '.join(self.adapters)}")
        return name, self.adapters[name]


def _named(adapters: Sequence[str]) -> dict[str, str]:
    from ..tuners.runs import parse_adapters, start_adapters

    specs = parse_adapters(adapters)
    if specs and start_adapters(specs):
        raise ConfigError("--adapters: these runs were trained on a base with an sft adapter merged in; this backend "
                          "loads adapters over the plain base: merge first (swiftall export --adapters RUN "
                          "--merge_lora true) and serve --model MERGED")
    return {spec.name: str(spec.path) for spec in specs}


class VllmEngine(_TemplatedEngine):
    """vLLM's AsyncLLMEngine: `generate(prompt, sampling_params, request_id, lora_request=...)` streams cumulative
    `RequestOutput`s; `abort(request_id)` when the caller stops reading."""

    def __init__(self, model_dir: str, template: Any, adapters: Sequence[str] = (), max_batch_size: int = 256,
                 max_model_len: Optional[int] = None, default_config: Optional[RequestConfig] = None, **engine_kwargs):
        self._vllm = require("vllm", "vllm", "--infer_backend vllm")
        self._setup(template, adapters, default_config)
        self._args = dict(model=model_dir, max_num_seqs=max_batch_size, max_model_len=max_model_len,
                          **vllm_lora_kwargs(self.adapters), **engine_kwargs)
        self._start_loop("vllm")

    async def _create(self) -> None:
        vllm = self._vllm
        self.engine = vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(**self._args))
        config = await _maybe_await(self.engine.get_model_config())
        self.max_model_len = getattr(config, "max_model_len", None)

    async def _events(self, request: InferRequest, config: RequestConfig) -> AsyncIterator[StreamEvent]:
        from vllm.lora.request import LoRARequest

        media = self._with_media(request)
        if media is None:
            prompt: dict[str, Any] = {"prompt_token_ids": self._prompt_ids(request)}
        else:
            text, loaded, _ = media
            ids = self.template.tokenizer(text, add_special_tokens=False)["input_ids"]
            prompt = {"prompt_token_ids": ids, "multi_modal_data": vllm_multi_modal_data(loaded)}
        name, path = self._adapter_path(request)
        lora = LoRARequest(name, list(self.adapters).index(name) + 1, path) if name else None
        params = self._vllm.SamplingParams(**vllm_sampling_kwargs(config))
        request_id, finished, deltas = uuid.uuid4().hex, False, {}
        try:
            async for output in self.engine.generate(prompt, params, request_id, lora_request=lora):
                for event in vllm_events(output, deltas, self.decode):
                    yield event
                finished = bool(output.finished)
        finally:
            if not finished:
                await _maybe_await(self.engine.abort(request_id))

    async def _shutdown(self) -> None:
        stop = getattr(self.engine, "shutdown", None)
        if stop is not None:
            await _maybe_await(stop())


class SglangEngine(_TemplatedEngine):
    """SGLang's offline Engine: `async_generate(..., stream=True)` streams dicts with cumulative text; n answers
    run as n requests (seeded apart)."""

    def __init__(self, model_dir: str, template: Any, adapters: Sequence[str] = (), max_batch_size: int = 256,
                 default_config: Optional[RequestConfig] = None, **engine_kwargs):
        self._sglang = require("sglang", "sglang", "--infer_backend sglang")
        self._setup(template, adapters, default_config)
        self._args = dict(model_path=model_dir, max_running_requests=max_batch_size,
                          **sglang_lora_kwargs(self.adapters), **engine_kwargs)
        self._start_loop("sglang")

    async def _create(self) -> None:
        self.engine = self._sglang.Engine(**self._args)

    async def _events(self, request: InferRequest, config: RequestConfig) -> AsyncIterator[StreamEvent]:
        media = self._with_media(request)
        inputs: dict[str, Any] = {"input_ids": self._prompt_ids(request)} if media is None else \
            {"prompt": media[0], **sglang_media_kwargs(media[1])}
        name, _ = self._adapter_path(request)
        if name:
            inputs["lora_path"] = name
        if config.logprobs or config.top_logprobs:
            inputs.update(return_logprob=True, top_logprobs_num=config.top_logprobs)
        streams = [self._one(inputs, config, i) for i in range(max(1, config.n))]
        async for _k, event in merge_streams(streams):
            yield event

    async def _one(self, inputs: dict[str, Any], config: RequestConfig, index: int) -> AsyncIterator[StreamEvent]:
        params = {**sglang_sampling_params(config), "n": 1}
        rid, finished, track = uuid.uuid4().hex, False, Deltas()
        try:
            async for chunk in await self.engine.async_generate(sampling_params=params, stream=True, rid=rid,
                                                                **inputs):
                event = sglang_event(chunk, index, track, self.decode)
                finished = event.finish_reason is not None
                yield event
        finally:
            if not finished:
                self.engine.tokenizer_manager.abort_request(rid)

    async def _shutdown(self) -> None:
        self.engine.shutdown()


class LmdeployEngine(_TemplatedEngine):
    """LMDeploy's pipeline: `generate(messages, session_id, gen_config, stream_response=True, ..., input_ids=...)`
    (exactly one of messages and input_ids) streams incremental `GenOut`s; one adapter per request (`adapter_name`);
    n answers run as n sessions."""

    def __init__(self, model_dir: str, template: Any, adapters: Sequence[str] = (), max_batch_size: int = 256,
                 default_config: Optional[RequestConfig] = None, **engine_kwargs):
        self._lmdeploy = require("lmdeploy", "lmdeploy", "--infer_backend lmdeploy")
        self._setup(template, adapters, default_config)
        self._model_dir, self._sessions = model_dir, itertools.count(1)
        self._backend = self._lmdeploy.PytorchEngineConfig(max_batch_size=max_batch_size,
                                                           adapters=self.adapters or None, **engine_kwargs)
        self._start_loop("lmdeploy")

    async def _create(self) -> None:
        self.pipe = self._lmdeploy.pipeline(self._model_dir, backend_config=self._backend)

    async def _events(self, request: InferRequest, config: RequestConfig) -> AsyncIterator[StreamEvent]:
        media = self._with_media(request)
        if media is None:
            inputs = {"messages": None, "input_ids": self._prompt_ids(request), "do_preprocess": False}
        else:
            if media[1].get("audios") or media[1].get("videos"):
                raise ConfigError("--infer_backend lmdeploy takes images only; audio and video need pt or vllm")
            inputs = {"messages": lmdeploy_messages(media[2], media[1]), "do_preprocess": True}
        name, _ = self._adapter_path(request)
        streams = [self._one(inputs, name, config, i) for i in range(max(1, config.n))]
        async for _k, event in merge_streams(streams):
            yield event

    async def _one(self, inputs: dict[str, Any], adapter: Optional[str], config: RequestConfig, index: int
                   ) -> AsyncIterator[StreamEvent]:
        seed = None if config.seed is None else config.seed + index
        gen = self._lmdeploy.GenerationConfig(**{**lmdeploy_gen_kwargs(config), "n": 1, **(
            {"random_seed": seed} if seed is not None else {})})
        session, finished = next(self._sessions), False
        try:
            async for out in self.pipe.generate(session_id=session, gen_config=gen, stream_response=True,
                                                sequence_start=True, sequence_end=True, adapter_name=adapter,
                                                **inputs):
                event = lmdeploy_event(out, index, self.decode)
                finished = event.finish_reason is not None
                yield event
        finally:
            stop = getattr(self.pipe, "stop_session", None)  # newer LMDeploy ends the session when the generator closes
            if not finished and stop is not None:
                await _maybe_await(stop(session))

    async def _shutdown(self) -> None:
        close = getattr(self.pipe, "close", None)
        if close is not None:
            await _maybe_await(close())


async def _maybe_await(value: Any) -> Any:
    return await value if hasattr(value, "__await__") else value


BACKENDS = {"vllm": VllmEngine, "sglang": SglangEngine, "lmdeploy": LmdeployEngine, "llama_cpp": LlamaCppEngine}


def build_backend(name: str, model_dir: str, template: Any, adapters: Sequence[str], max_batch_size: int,
                  default_config: RequestConfig) -> Engine:
    return BACKENDS[name](model_dir, template, adapters=adapters, max_batch_size=max_batch_size,
                          default_config=default_config)

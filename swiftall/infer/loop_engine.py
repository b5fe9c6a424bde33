"""An Engine over an asyncio inference engine (vLLM's AsyncLLM, SGLang's Engine, LMDeploy's pipeline) that runs on
its own event loop in a background thread.

Subclasses create their engine on that loop (`_create`) and turn one request into an async stream of
`StreamEvent`s (`_events`). Everything else is shared: `infer` runs a batch's requests concurrently (the engine
batches them), `stream_events` and the async forms hand events over token by token, and a caller that stops
reading (a client gone, Ctrl-C) cancels the request's coroutine, whose `finally` aborts it in the engine.
"""
from __future__ import annotations

import asyncio
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterator, Optional

from ..utils.aio import put_from_thread
from .engine import Engine, InferRequest, InferResponse, RequestConfig, StreamEvent, TokenLogprob

_DONE = object()


@dataclass
class _Partial:
    text: str = ""
    finish_reason: Optional[str] = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    logprobs: list[TokenLogprob] = field(default_factory=list)
    has_logprobs: bool = False


class LoopEngine(Engine):
    default_config: RequestConfig

    def _start_loop(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=f"swiftall-{name}", daemon=True)
        self._thread.start()
        self._run(self._create())

    def _run(self, coro: Any) -> Any:
        """Run `coro` on the engine's loop and wait for it; an interrupted wait cancels it."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    async def _create(self) -> None:
        """Build the backend's engine, on its loop."""

    def _events(self, request: InferRequest, config: RequestConfig) -> AsyncIterator[StreamEvent]:
        raise NotImplementedError

    # ---- Engine ---------------------------------------------------------------------------------
    def infer(self, requests: list[Any], config: Optional[RequestConfig] = None) -> list[InferResponse]:
        config = config or self.default_config
        reqs = [InferRequest.coerce(r) for r in requests]

        async def everything() -> list[InferResponse]:
            return list(await asyncio.gather(*(self._collect(r, config) for r in reqs)))

        return self._run(everything())

    async def infer_async(self, request: Any, config: Optional[RequestConfig] = None) -> InferResponse:
        coro = self._collect(InferRequest.coerce(request), config or self.default_config)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def stream_events(self, request: Any, config: Optional[RequestConfig] = None) -> Iterator[StreamEvent]:
        items: queue.Queue = queue.Queue()
        future = asyncio.run_coroutine_threadsafe(
            self._pump(InferRequest.coerce(request), config or self.default_config, items.put), self.loop)
        try:
            while (item := items.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            future.cancel()

    async def stream_async(self, request: Any, config: Optional[RequestConfig] = None) -> AsyncIterator[StreamEvent]:
        caller = asyncio.get_running_loop()
        items: asyncio.Queue = asyncio.Queue()
        put = put_from_thread(caller, items)
        future = asyncio.run_coroutine_threadsafe(
            self._pump(InferRequest.coerce(request), config or self.default_config, put), self.loop)
        try:
            while (item := await items.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            future.cancel()

    def stream(self, request: Any, config: Optional[RequestConfig] = None) -> Iterator[str]:
        for event in self.stream_events(request, config):
            if event.text:
                yield event.text

    def close(self) -> None:
        loop = getattr(self, "loop", None)
        if loop is None or not loop.is_running():
            return
        try:
            self._run(self._shutdown())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout=30)

    async def _shutdown(self) -> None:
        """Stop the backend's engine, on its loop."""

    # ---- helpers --------------------------------------------------------------------------------
    async def _pump(self, request: InferRequest, config: RequestConfig, put: Any) -> None:
        try:
            async for event in self._events(request, config):
                put(event)
        except Exception as exc:  # raised on the caller's side
            put(exc)
        finally:
            put(_DONE)

    async def _collect(self, request: InferRequest, config: RequestConfig) -> InferResponse:
        parts: dict[int, _Partial] = {}
        async for event in self._events(request, config):
            part = parts.setdefault(event.index, _Partial())
            part.text += event.text
            part.logprobs += event.logprobs
            part.has_logprobs |= bool(event.logprobs)
            if event.finish_reason is not None:
                part.finish_reason = event.finish_reason
                part.prompt_tokens, part.completion_tokens = event.prompt_tokens, event.completion_tokens
        answers = [InferResponse(p.text, p.finish_reason or "stop", p.prompt_tokens, p.completion_tokens,
                                 logprobs=p.logprobs if p.has_logprobs else None)
                   for _, p in sorted(parts.items())]
        if not answers:
            return InferResponse("", "stop", 0, 0)
        first, *others = answers
        first.choices = others
        return first

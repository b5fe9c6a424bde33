"""The one Engine interface used by infer, deploy, evaluation and the web UI.

Backends implement `infer` (a list of requests) and `stream` (text pieces of one answer). The richer calls the
server needs -- `stream_events` (pieces with token counts, log-probabilities and the finish reason) and the async
forms `infer_async` / `stream_async` -- have working defaults here, and backends override them when they can do
better (the PyTorch engine serves every one of them from its continuous-batching scheduler).
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterator, Optional, Union

from ..utils.aio import put_from_thread

BASE_MODEL = "__base__"  # adapter name meaning "the base model, no adapter" (peft's own spelling)


@dataclass
class RequestConfig:
    """Sampling settings of one request. temperature 0 means greedy; None fields use the model's defaults.

    `logprobs` returns the log-probability of each generated token, `top_logprobs` (0-20) also the k most
    likely alternatives at each step; `n` asks for several answers to the same request."""

    max_new_tokens: int = 512
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    top_k: Optional[int] = None
    repetition_penalty: Optional[float] = None
    stop: list[str] = field(default_factory=list)
    seed: Optional[int] = None
    n: int = 1
    logprobs: bool = False
    top_logprobs: int = 0
    stop_token_ids: list[int] = field(default_factory=list)
    ignore_eos: bool = False      # generate exactly max_new_tokens (benchmarks; vLLM's extension of the API)

    @classmethod
    def from_args(cls, args: Any) -> "RequestConfig":
        return cls(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                   top_k=args.top_k, repetition_penalty=args.repetition_penalty, seed=getattr(args, "seed", None))


@dataclass
class InferRequest:
    messages: list[dict[str, Any]]
    adapter: Optional[str] = None
    images: list[Any] = field(default_factory=list)
    audios: list[Any] = field(default_factory=list)
    videos: list[Any] = field(default_factory=list)
    tools: Optional[list[dict[str, Any]]] = None
    prompt: Optional[str] = None          # raw text completion: used as is instead of the chat template
    prefill: Optional[str] = None         # text the answer must start with (appended after the assistant header)
    prompt_ids: Optional[list[int]] = None  # an already-encoded prompt, used as is (RL rollouts encode their own)

    @classmethod
    def coerce(cls, value: Union["InferRequest", dict, str]) -> "InferRequest":
        if isinstance(value, InferRequest):
            return value
        if isinstance(value, str):
            return cls(messages=[{"role": "user", "content": value}])
        if isinstance(value, dict) and ("messages" in value or "prompt" in value or "prompt_ids" in value):
            keys = {"messages", "adapter", "images", "audios", "videos", "tools", "prompt", "prefill", "prompt_ids"}
            data = {k: v for k, v in value.items() if k in keys}
            data.setdefault("messages", [])
            return cls(**data)
        raise TypeError(f"an inference request is a question string, a dict with 'messages' (or 'prompt'), or an "
                        f"InferRequest; got {type(value).__name__}")


@dataclass
class TokenLogprob:
    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)  # (token text, logprob), most likely first


@dataclass
class InferResponse:
    text: str
    finish_reason: str            # "stop" or "length"
    prompt_tokens: int
    completion_tokens: int
    logprobs: Optional[list[TokenLogprob]] = None
    choices: list["InferResponse"] = field(default_factory=list)  # the other answers when n > 1
    token_ids: Optional[list[int]] = None  # the generated token ids, a final eos included (where the engine has them)


@dataclass
class StreamEvent:
    """One piece of a streamed answer. The last event of an answer has `finish_reason` set."""

    text: str
    index: int = 0                        # which of the n answers
    finish_reason: Optional[str] = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    logprobs: list[TokenLogprob] = field(default_factory=list)


class QueueFullError(RuntimeError):
    """The engine is saturated; the server answers 429 with this message."""


class ShuttingDownError(QueueFullError):
    """The engine is closing and takes no new requests; the server answers 503."""


class Engine(ABC):
    """Backends implement infer and stream; the rest is shared.

    `infer` takes a list of requests and returns a list of responses; it also takes one request (a question string,
    a dict or an InferRequest) with its media as keywords and returns one response:
    `engine.infer("What is in this picture?<image>", images=["cat.jpg"]).text`."""

    max_model_len: Optional[int] = None   # context length, when known (the server refuses longer requests)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "infer" in cls.__dict__:
            cls.infer = _one_or_many(cls.__dict__["infer"])

    @abstractmethod
    def infer(self, requests: list[Any], config: Optional[RequestConfig] = None) -> list[InferResponse]:
        """Answer a batch of requests."""

    @abstractmethod
    def stream(self, request: Any, config: Optional[RequestConfig] = None) -> Iterator[str]:
        """Yield the answer's text in pieces as it is generated."""

    def chat(self, question: str, config: Optional[RequestConfig] = None, **kwargs: Any) -> str:
        return self.infer([InferRequest(messages=[{"role": "user", "content": question}], **kwargs)], config)[0].text

    # ---- richer forms with defaults -------------------------------------------------------------
    def stream_events(self, request: Any, config: Optional[RequestConfig] = None) -> Iterator[StreamEvent]:
        """Stream with finish reason and counts. Default: the text pieces of `stream`, then one final event."""
        count = 0
        for piece in self.stream(request, config):
            count += 1
            yield StreamEvent(text=piece)
        yield StreamEvent(text="", finish_reason="stop", completion_tokens=count)

    def count_prompt_tokens(self, request: Any) -> Optional[int]:
        """Prompt length in tokens, when the engine can tell without generating (None otherwise)."""
        return None

    def embed(self, texts: list[str], adapter: Optional[str] = None) -> list[list[float]]:
        raise NotImplementedError(f"{type(self).__name__} does not compute embeddings")

    async def infer_async(self, request: Any, config: Optional[RequestConfig] = None) -> InferResponse:
        return (await asyncio.to_thread(self.infer, [request], config))[0]

    async def stream_async(self, request: Any, config: Optional[RequestConfig] = None) -> AsyncIterator[StreamEvent]:
        """`stream_events` run on a worker thread, handed to the event loop piece by piece."""
        async for event in iterate_in_thread(lambda: self.stream_events(request, config)):
            yield event

    def infer_iter(self, requests: list[Any], config: Optional[RequestConfig] = None
                   ) -> Iterator[tuple[int, InferResponse]]:
        """(index, response) of each request as it is answered, so a caller can keep answers as they come (batch
        infer writes them as they finish). Default: `infer` over slices of `max_batch_size` requests."""
        yield from _in_slices(self, requests, config)

    def close(self) -> None:
        """Finish in-flight work and release resources."""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, kind: Any, *exc: Any) -> None:
        """`with build_engine(cfg) as engine:` finishes the engine's work on a normal exit and cancels it on an error
        or Ctrl-C; either way its threads have stopped when the block ends."""
        shut_down(self, cancel=kind is not None)


def shut_down(engine: Any, cancel: bool = False) -> None:
    """engine.close(), with cancel=True passed to engines that can drop in-flight work (the PyTorch engine)."""
    import inspect

    close = getattr(engine, "close", None)
    if close is None:
        return
    if "cancel" in inspect.signature(close).parameters:
        close(cancel=cancel)
    else:
        close()


@contextlib.contextmanager
def running(engine: Any) -> Iterator[Any]:
    """`with running(engine):` -- Engine's own `with` for any object with the engine's methods (stand-ins too)."""
    try:
        yield engine
    except BaseException:
        shut_down(engine, cancel=True)
        raise
    shut_down(engine)


def answers_as_finished(engine: Any, requests: list[Any], config: Optional[RequestConfig] = None
                        ) -> Iterator[tuple[int, InferResponse]]:
    """(index, response) as each request is answered: the engine's `infer_iter`, or `infer` over slices."""
    if hasattr(engine, "infer_iter"):
        return engine.infer_iter(requests, config)
    return _in_slices(engine, requests, config)


def _in_slices(engine: Any, requests: list[Any], config: Optional[RequestConfig]
               ) -> Iterator[tuple[int, InferResponse]]:
    size = max(1, int(getattr(engine, "max_batch_size", 16) or 16))
    for start in range(0, len(requests), size):
        for offset, response in enumerate(engine.infer(list(requests[start:start + size]), config)):
            yield start + offset, response


def as_batch(requests: Any, images: Any = None, audios: Any = None, videos: Any = None
             ) -> tuple[list[Any], bool]:
    """(the requests as a list, whether one request was given) with `images`/`audios`/`videos` added to it."""
    single = isinstance(requests, (str, dict, InferRequest))
    batch = [requests] if single else list(requests)
    media = {k: v for k, v in (("images", images), ("audios", audios), ("videos", videos)) if v}
    if not media:
        return batch, single
    if len(batch) != 1:
        raise TypeError(f"images=/audios=/videos= go with one request, got {len(batch)}; give each InferRequest "
                        "its own media")
    request = InferRequest.coerce(batch[0])
    extra = {k: [v] if isinstance(v, str) else list(v) for k, v in media.items()}
    merged = {k: [*getattr(request, k), *items] for k, items in extra.items()}
    return [InferRequest(**{**request.__dict__, **merged})], single


def _one_or_many(batch_infer: Any) -> Any:
    """A backend's `infer(requests, config)` that also takes one request and media keywords (see Engine)."""

    @functools.wraps(batch_infer)
    def infer(self: Any, requests: Any, config: Optional[RequestConfig] = None, *, images: Any = None,
              audios: Any = None, videos: Any = None) -> Any:
        batch, single = as_batch(requests, images, audios, videos)
        results = batch_infer(self, batch, config)
        return results[0] if single else results

    return infer


async def iterate_in_thread(make_iterator: Any) -> AsyncIterator[Any]:
    """Run a blocking iterator on a thread; yield its items on the event loop. Errors are re-raised here."""
    loop = asyncio.get_running_loop()
    items: asyncio.Queue = asyncio.Queue()
    done = object()
    stop = threading.Event()

    put = put_from_thread(loop, items)

    def pump() -> None:
        try:
            for item in make_iterator():
                put(item)
                if stop.is_set():
                    break
            put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)

    threading.Thread(target=pump, daemon=True).start()
    try:
        while True:
            item = await items.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()

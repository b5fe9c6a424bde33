"""The one Engine interface used by infer, deploy, evaluation and the web UI."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Union


@dataclass
class RequestConfig:
    """Sampling settings of one request. temperature 0 means greedy; None fields use the model's defaults."""

    max_new_tokens: int = 512
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    top_k: Optional[int] = None
    repetition_penalty: Optional[float] = None
    stop: list[str] = field(default_factory=list)
    seed: Optional[int] = None

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

    @classmethod
    def coerce(cls, value: Union["InferRequest", dict, str]) -> "InferRequest":
        if isinstance(value, InferRequest):
            return value
        if isinstance(value, str):
            return cls(messages=[{"role": "user", "content": value}])
        if isinstance(value, dict) and "messages" in value:
            keys = {"messages", "adapter", "images", "audios", "videos", "tools"}
            return cls(**{k: v for k, v in value.items() if k in keys})
        raise TypeError(f"an inference request is a question string, a dict with 'messages', or an InferRequest; "
                        f"got {type(value).__name__}")


@dataclass
class InferResponse:
    text: str
    finish_reason: str            # "stop" or "length"
    prompt_tokens: int
    completion_tokens: int


class Engine(ABC):
    """Backends implement infer and stream; the rest is shared."""

    @abstractmethod
    def infer(self, requests: list[Any], config: Optional[RequestConfig] = None) -> list[InferResponse]:
        """Answer a batch of requests."""

    @abstractmethod
    def stream(self, request: Any, config: Optional[RequestConfig] = None) -> Iterator[str]:
        """Yield the answer's text in pieces as it is generated."""

    def chat(self, question: str, config: Optional[RequestConfig] = None, **kwargs: Any) -> str:
        return self.infer([InferRequest(messages=[{"role": "user", "content": question}], **kwargs)], config)[0].text

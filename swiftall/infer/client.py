"""An Engine that talks to any OpenAI-compatible server (swiftall deploy, vLLM, SGLang, OpenAI itself).

`HttpEngine("http://127.0.0.1:8000/v1", model="default")` answers `infer`/`stream` like a local engine, so
`infer` and evaluation can target a URL. Requests of one `infer` call run concurrently (the server batches them).
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, Optional

from ..utils.errors import SwiftallError
from ..utils.optional import require
from .engine import Engine, InferRequest, InferResponse, RequestConfig, StreamEvent, TokenLogprob


class HttpEngineError(SwiftallError):
    """The server answered with an error."""


def chat_body(request: InferRequest, config: RequestConfig, model: str, stream: bool = False) -> dict[str, Any]:
    """An InferRequest + RequestConfig -> an OpenAI chat/completions (or completions, for `prompt`) body."""
    body: dict[str, Any] = {"model": request.adapter or model, "max_tokens": config.max_new_tokens, "n": config.n}
    if request.prompt is not None:
        body["prompt"] = request.prompt
    else:
        body["messages"] = _with_media(request)
    for key in ("temperature", "top_p", "seed"):
        if getattr(config, key) is not None:
            body[key] = getattr(config, key)
    if config.top_k is not None:
        body["top_k"] = config.top_k
    if config.repetition_penalty is not None:
        body["repetition_penalty"] = config.repetition_penalty
    if config.stop:
        body["stop"] = list(config.stop)
    if config.logprobs or config.top_logprobs:
        if request.prompt is not None:
            body["logprobs"] = config.top_logprobs or 1
        else:
            body["logprobs"], body["top_logprobs"] = True, config.top_logprobs
    if request.tools:
        body["tools"] = request.tools
    if stream:
        body["stream"], body["stream_options"] = True, {"include_usage": True}
    return body


def _with_media(request: InferRequest) -> list[dict[str, Any]]:
    """Images given beside the messages become image_url parts of the last user message."""
    messages = [dict(m) for m in request.messages]
    if request.images and messages:
        parts = [{"type": "text", "text": messages[-1].get("content") or ""}]
        parts += [{"type": "image_url", "image_url": {"url": str(url)}} for url in request.images]
        messages[-1]["content"] = parts
    return messages


def parse_choice(choice: dict[str, Any], usage: dict[str, Any]) -> InferResponse:
    message = choice.get("message") or {}
    text = message.get("content") if "message" in choice else choice.get("text")
    logprobs = None
    content = (choice.get("logprobs") or {}).get("content")
    if content:
        logprobs = [TokenLogprob(c["token"], c["logprob"], [(t["token"], t["logprob"]) for t in c.get("top_logprobs")
                                                           or []]) for c in content]
    return InferResponse(text=text or "", finish_reason=choice.get("finish_reason") or "stop",
                         prompt_tokens=usage.get("prompt_tokens", 0),
                         completion_tokens=usage.get("completion_tokens", 0), logprobs=logprobs)


def parse_response(data: dict[str, Any]) -> InferResponse:
    choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
    if not choices:
        raise HttpEngineError(f"the server answered without choices: {json.dumps(data)[:200]}")
    first, *others = [parse_choice(c, data.get("usage") or {}) for c in choices]
    first.choices = others
    return first


class HttpEngine(Engine):
    def __init__(self, base_url: str, model: Optional[str] = None, api_key: Optional[str] = None,
                 timeout: float = 600.0, max_concurrency: int = 16, default_config: Optional[RequestConfig] = None):
        httpx = require("httpx", "serve", "the HTTP client engine")
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
        self.max_concurrency = max_concurrency
        self.default_config = default_config or RequestConfig()
        self.model = model or self._first_model()

    def _first_model(self) -> str:
        models = self._check(self.client.get("/models")).json().get("data") or []
        if not models:
            raise HttpEngineError(f"{self.base_url}/models lists no model; pass model=")
        return models[0]["id"]

    def _check(self, response: Any) -> Any:
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except Exception:
                message = response.text[:300]
            raise HttpEngineError(f"{self.base_url}: HTTP {response.status_code}: {message}")
        return response

    def _path(self, request: InferRequest) -> str:
        return "/completions" if request.prompt is not None else "/chat/completions"

    def infer(self, requests: list[Any], config: Optional[RequestConfig] = None) -> list[InferResponse]:
        config = config or self.default_config
        reqs = [InferRequest.coerce(r) for r in requests]

        def one(req: InferRequest) -> InferResponse:
            body = chat_body(req, config, self.model)
            return parse_response(self._check(self.client.post(self._path(req), json=body)).json())

        with ThreadPoolExecutor(max_workers=max(1, min(self.max_concurrency, len(reqs)))) as pool:
            return list(pool.map(one, reqs))

    def stream_events(self, request: Any, config: Optional[RequestConfig] = None) -> Iterator[StreamEvent]:
        config = config or self.default_config
        req = InferRequest.coerce(request)
        body = chat_body(req, config, self.model, stream=True)
        finals: list[StreamEvent] = []
        with self.client.stream("POST", self._path(req), json=body) as response:
            if response.status_code >= 400:
                response.read()
                self._check(response)
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                chunk = json.loads(payload)
                if "error" in chunk:
                    raise HttpEngineError(f"{self.base_url}: {chunk['error'].get('message')}")
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    text = delta.get("content") if "delta" in choice else choice.get("text")
                    event = StreamEvent(text=text or "", index=choice.get("index", 0),
                                        finish_reason=choice.get("finish_reason"))
                    (finals if event.finish_reason else []).append(event)
                    if event.text or not event.finish_reason:
                        yield StreamEvent(text=event.text, index=event.index)
                usage = chunk.get("usage")
                if usage:
                    for event in finals:
                        event.prompt_tokens = usage.get("prompt_tokens", 0)
                        event.completion_tokens = usage.get("completion_tokens", 0)
        for event in finals:
            yield StreamEvent(text="", index=event.index, finish_reason=event.finish_reason,
                              prompt_tokens=event.prompt_tokens, completion_tokens=event.completion_tokens)

    def stream(self, request: Any, config: Optional[RequestConfig] = None) -> Iterator[str]:
        for event in self.stream_events(request, config):
            if event.text:
                yield event.text

    def embed(self, texts: list[str], adapter: Optional[str] = None) -> list[list[float]]:
        data = self._check(self.client.post("/embeddings", json={"model": adapter or self.model, "input": texts}))
        return [d["embedding"] for d in sorted(data.json()["data"], key=lambda d: d["index"])]

    def close(self) -> None:
        self.client.close()

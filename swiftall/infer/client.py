"""An Engine that talks to any OpenAI-compatible server (swiftall deploy, vLLM, SGLang, OpenAI itself).

`HttpEngine("http://127.0.0.1:8000/v1", model="default")` answers `infer`/`stream` like a local engine, so
`infer` and evaluation can target a URL. Requests of one `infer` call run concurrently (the server batches them).
"""
from __future__ import annotations

import base64
import io
import json
import mimetypes
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator, Optional

from ..utils.errors import SwiftallError
from ..utils.optional import require
from .engine import Engine, InferRequest, InferResponse, RequestConfig, StreamEvent, TokenLogprob


class HttpEngineError(SwiftallError):
    """The server answered with an error."""


def chat_body(request: InferRequest, config: RequestConfig, model: str, stream: bool = False) -> dict[str, Any]:
    """An InferRequest + RequestConfig -> an OpenAI chat/completions (or completions, for `prompt`) body."""
    body: dict[str, Any] = {"model": request.adapter or model, "max_tokens": config.max_new_tokens, "n": config.n}
    if request.prompt_ids is not None:
        body["prompt"] = list(request.prompt_ids)
    elif request.prompt is not None:
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
        if request.prompt is not None or request.prompt_ids is not None:
            body["logprobs"] = config.top_logprobs or 1
        else:
            body["logprobs"], body["top_logprobs"] = True, config.top_logprobs
    if request.tools:
        body["tools"] = request.tools
    if stream:
        body["stream"], body["stream_options"] = True, {"include_usage": True}
    return body


MEDIA_TAGS = {"<image>": "images", "<audio>": "audios", "<video>": "videos"}
_TAG = re.compile("|".join(map(re.escape, MEDIA_TAGS)))


def _with_media(request: InferRequest) -> list[dict[str, Any]]:
    """The messages with the request's images, audios and videos as OpenAI content parts: each `<image>`,
    `<audio>`, `<video>` tag becomes the next item of its kind, where it stands; items without a tag join the
    last user message. Local files, bytes and PIL images travel as data: URLs (a server refuses local paths)."""
    messages = [dict(m) for m in request.messages]
    left = {kind: list(getattr(request, kind)) for kind in MEDIA_TAGS.values()}
    if not any(left.values()):
        return messages
    for m in messages:
        content = m.get("content")
        if isinstance(content, str) and _TAG.search(content):
            m["content"] = _split_tags(content, left)
    extra = [media_part(kind, item) for kind, items in left.items() for item in items]
    if extra:
        users = [m for m in messages if m.get("role") == "user"] or messages
        if not users:
            raise HttpEngineError("media need a message to go with")
        last = users[-1]
        content = last.get("content")
        parts = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
        last["content"] = [*parts, *extra]
    return messages


def _split_tags(text: str, left: dict[str, list]) -> list[dict[str, Any]]:
    parts, at = [], 0
    for match in _TAG.finditer(text):
        kind = MEDIA_TAGS[match.group()]
        if not left[kind]:
            continue  # more tags than items: the tag stays text, and the server names the mismatch
        if match.start() > at:
            parts.append({"type": "text", "text": text[at:match.start()]})
        parts.append(media_part(kind, left[kind].pop(0)))
        at = match.end()
    if at < len(text):
        parts.append({"type": "text", "text": text[at:]})
    return parts


def media_part(kind: str, item: Any) -> dict[str, Any]:
    """One image/audio/video as an OpenAI content part (audio files as `input_audio`, with their format)."""
    url = _as_url(kind, item)
    if kind == "images":
        return {"type": "image_url", "image_url": {"url": url}}
    if kind == "videos":
        return {"type": "video_url", "video_url": {"url": url}}
    match = re.match(r"data:audio/([\w.+-]+);base64,", url)
    if match:
        audio_format = AUDIO_FORMATS.get(match.group(1), match.group(1))
        return {"type": "input_audio", "input_audio": {"data": url[match.end():], "format": audio_format}}
    return {"type": "audio_url", "audio_url": {"url": url}}


def _as_url(kind: str, item: Any) -> str:
    if hasattr(item, "save") and hasattr(item, "size"):  # a PIL image
        out = io.BytesIO()
        item.save(out, format="PNG")
        return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
    if isinstance(item, (bytes, bytearray)):
        return f"data:{DEFAULT_MIME[kind]};base64," + base64.b64encode(bytes(item)).decode()
    if not isinstance(item, (str, Path)):
        raise HttpEngineError(f"{kind}: a {type(item).__name__} cannot be sent to a server; give a URL, a file path, "
                              "bytes or a PIL image")
    text = str(item)
    if text.lower().startswith(("http://", "https://", "data:")):
        return text
    path = Path(text[7:] if text.startswith("file://") else text).expanduser()
    if not path.is_file():
        raise HttpEngineError(f"{kind}: {text[:120]} is neither a URL nor a file")
    mime = mimetypes.guess_type(path.name)[0] or DEFAULT_MIME[kind]
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


DEFAULT_MIME = {"images": "image/png", "audios": "audio/wav", "videos": "video/mp4"}
AUDIO_FORMATS = {"mpeg": "mp3", "x-wav": "wav", "wave": "wav", "x-flac": "flac"}


def parse_choice(choice: dict[str, Any], usage: dict[str, Any]) -> InferResponse:
    message = choice.get("message") or {}
    text = message.get("content") if "message" in choice else choice.get("text")
    return InferResponse(text=text or "", finish_reason=choice.get("finish_reason") or "stop",
                         prompt_tokens=usage.get("prompt_tokens", 0),
                         completion_tokens=usage.get("completion_tokens", 0), logprobs=choice_logprobs(choice))


def choice_logprobs(choice: dict[str, Any]) -> Optional[list[TokenLogprob]]:
    """A choice's (or a streamed chunk's) logprobs in chat's shape or /v1/completions' shape."""
    given = choice.get("logprobs") or {}
    content = given.get("content")
    if content:
        return [TokenLogprob(c["token"], c["logprob"], [(t["token"], t["logprob"]) for t in c.get("top_logprobs")
                                                        or []]) for c in content]
    if given.get("tokens"):
        tops = given.get("top_logprobs") or [None] * len(given["tokens"])
        return [TokenLogprob(t, v, list((top or {}).items()))
                for t, v, top in zip(given["tokens"], given.get("token_logprobs") or [], tops)]
    return None


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
        return "/completions" if request.prompt is not None or request.prompt_ids is not None else "/chat/completions"

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
                    logprobs = choice_logprobs(choice) or []
                    if event.text or logprobs or not event.finish_reason:
                        yield StreamEvent(text=event.text, index=event.index, logprobs=logprobs)
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

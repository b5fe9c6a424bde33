"""Serving logic over an Engine: OpenAI bodies -> InferRequest/RequestConfig -> OpenAI answers (whole or SSE)."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterator, Optional

from ..infer.engine import (BASE_MODEL, Engine, InferRequest, InferResponse, QueueFullError, RequestConfig,
                            ShuttingDownError)
from ..templates import TemplateError
from ..templates.tags import TAG_RE
from ..utils.errors import ConfigError, DataError
from .completions import Completions, check_token_ids
from .errors import ApiError
from .media import MAX_MEDIA_BYTES, MEDIA_TIMEOUT_S, check_media_url, download_media
from .protocol import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from .stream import merge_streams, sse, usage_chunk
from .tasks import shortened
from ..templates.tools import inline_tools
from .tools import forced_prefill, parse_tool_calls

MEDIA_PARTS = {"image_url": ("images", "<image>"), "input_image": ("images", "<image>"),
               "input_audio": ("audios", "<audio>"), "audio_url": ("audios", "<audio>"),
               "video_url": ("videos", "<video>")}


@dataclass
class ServeSettings:
    served_model_name: str
    adapters: list[str] = field(default_factory=list)   # adapter names a request's `model` may choose
    base_is_default: bool = True                        # the served name means the base model (False: 1st adapter)
    api_key: Optional[str] = None
    max_body_bytes: int = 10 * 1024 * 1024
    allow_local_media: Optional[str] = None
    allow_private_media_urls: bool = False
    default_max_tokens: int = 512
    max_media_bytes: int = MAX_MEDIA_BYTES   # per downloaded media URL
    media_timeout_s: float = MEDIA_TIMEOUT_S  # per downloaded media URL, redirects included


class Handlers:
    def __init__(self, engine: Engine, settings: ServeSettings):
        self.engine = engine
        self.settings = settings
        self.created = int(time.time())
        self.completions = Completions(self)

    # ---- models -------------------------------------------------------------------------------
    def models(self) -> dict[str, Any]:
        base = self.settings.served_model_name
        data = [{"id": base, "object": "model", "created": self.created, "owned_by": "swiftall", "root": base,
                 "parent": None, "max_model_len": self.engine.max_model_len}]
        data += [{"id": name, "object": "model", "created": self.created, "owned_by": "swiftall", "root": name,
                  "parent": base, "max_model_len": self.engine.max_model_len} for name in self.settings.adapters]
        return {"object": "list", "data": data}

    def adapter_for(self, model: str) -> Optional[str]:
        if model == self.settings.served_model_name:
            return BASE_MODEL if self.settings.base_is_default and self.settings.adapters else None
        if model in self.settings.adapters:
            return model
        known = ", ".join([self.settings.served_model_name, *self.settings.adapters])
        raise ApiError(404, f"The model '{model}' does not exist; this server serves: {known}", "model",
                       "model_not_found")

    # ---- request translation ------------------------------------------------------------------
    def config(self, body: Any, max_tokens: Optional[int], prompt_tokens: int) -> RequestConfig:
        stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        if len(stop) > 4:
            raise ApiError(400, "stop: at most 4 stop sequences", "stop", "invalid_value")
        limit = self.engine.max_model_len
        wanted = max_tokens or self.settings.default_max_tokens
        if limit and prompt_tokens + (max_tokens or 0) > limit:
            raise ApiError(400, f"This model's maximum context length is {limit} tokens. However, you requested "
                           f"{prompt_tokens + (max_tokens or 0)} tokens ({prompt_tokens} in the messages, "
                           f"{max_tokens or 0} in the completion). Please reduce the length of the messages or "
                           "completion.", "max_tokens" if max_tokens else "messages", "context_length_exceeded")
        if limit:
            wanted = min(wanted, limit - prompt_tokens)
        top_k = None if body.top_k in (None, -1) else body.top_k
        return RequestConfig(max_new_tokens=wanted, temperature=body.temperature, top_p=body.top_p, top_k=top_k,
                             repetition_penalty=body.repetition_penalty, stop=stop, seed=body.seed, n=body.n,
                             ignore_eos=body.ignore_eos)

    def _messages(self, body: ChatCompletionRequest) -> tuple[list[dict], dict[str, list], dict]:
        """The messages, their media (URLs, paths) and the request field of each media item."""
        messages, media, params = [], {"images": [], "audios": [], "videos": []}, {}
        for i, m in enumerate(body.messages):
            role = "system" if m.role == "developer" else m.role
            content = m.content
            if isinstance(content, list):
                content = self._parts(content, media, params, f"messages.{i}.content")
            message = {"role": role, "content": content if content is not None else ""}
            if m.tool_calls:
                message["tool_calls"] = m.tool_calls
            if m.tool_call_id:
                message["tool_call_id"] = m.tool_call_id
            if m.name:
                message["name"] = m.name
            messages.append(message)
        return messages, media, params

    def _parts(self, parts: list[dict], media: dict[str, list], params: dict, where: str) -> str:
        texts = []
        for j, part in enumerate(parts):
            kind = part.get("type")
            if kind in ("text", "input_text"):
                texts.append(part.get("text") or "")
            elif kind in MEDIA_PARTS:
                slot, placeholder = MEDIA_PARTS[kind]
                value = part.get(kind)
                url = value.get("url") if isinstance(value, dict) else value
                if kind == "input_audio" and isinstance(value, dict) and "data" in value:
                    url = f"data:audio/{value.get('format', 'wav')};base64,{value['data']}"
                params[(slot, len(media[slot]))] = f"{where}.{j}"
                media[slot].append(check_media_url(url, self.settings.allow_local_media, f"{where}.{j}"))
                texts.append(placeholder)
            else:
                raise ApiError(400, f"{where}.{j}.type: unsupported content part type {kind!r}", f"{where}.{j}.type",
                               "invalid_value")
        return "".join(texts)

    async def chat_request(self, body: ChatCompletionRequest) -> tuple[InferRequest, RequestConfig, bool]:
        """Returns the request, its settings, and whether tool calls are to be parsed from the answer. http(s) media
        are downloaded here (media.download_media), so the engine gets their bytes and never a client's URL."""
        adapter = self.adapter_for(body.model)
        messages, media, params = self._messages(body)
        await download_media(media, self.settings.allow_private_media_urls, params, self.settings.max_media_bytes,
                             self.settings.media_timeout_s)
        tools = [t.model_dump(exclude_none=True) for t in body.tools or []]
        use_tools = bool(tools) and body.tool_choice != "none"
        request = InferRequest(messages=messages, adapter=adapter, **media)
        if use_tools:
            template = getattr(self.engine, "template", None)
            if template is not None and template.renders_tools:
                request.tools = tools
            else:
                request.messages = inline_tools(messages, tools)
            request.prefill = forced_prefill(body.tool_choice)
        config = self.config(body, body.max_completion_tokens or body.max_tokens, await self.count(request) or 0)
        config.logprobs, config.top_logprobs = body.logprobs, (body.top_logprobs or 0) if body.logprobs else 0
        if use_tools and request.prefill:
            config.stop = [*config.stop, "</tool_call>"]
        return request, config, use_tools

    async def count(self, request: InferRequest, param: str = "messages") -> Optional[int]:
        """The prompt's length in tokens (None when the engine cannot tell), encoded off the event loop."""
        try:
            return await asyncio.to_thread(self.engine.count_prompt_tokens, request)
        except (TemplateError, ConfigError) as exc:
            raise ApiError(400, str(exc), param, "invalid_value") from None

    def engine_tokens(self, text: str) -> int:
        try:
            return self.engine.count_prompt_tokens(InferRequest(messages=[], prompt=text)) or 0
        except (TemplateError, ConfigError) as exc:
            raise ApiError(400, str(exc), "input", "invalid_value") from None

    # ---- whole answers ------------------------------------------------------------------------
    async def chat(self, body: ChatCompletionRequest) -> dict[str, Any]:
        request, config, use_tools = await self.chat_request(body)
        response = await self.infer(request, config)
        answers = [response, *response.choices]
        names = {t.function.name for t in body.tools or []}
        choices = []
        for i, a in enumerate(answers):
            message: dict[str, Any] = {"role": "assistant", "content": a.text}
            finish = a.finish_reason
            if use_tools:
                content, calls = parse_tool_calls(a.text, names)
                if calls:
                    message, finish = {"role": "assistant", "content": content, "tool_calls": calls}, "tool_calls"
            choice = {"index": i, "message": message, "finish_reason": finish, "logprobs": None}
            if config.logprobs and a.logprobs:
                choice["logprobs"] = {"content": [chat_logprob(lp) for lp in a.logprobs]}
            choices.append(choice)
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": body.model, "choices": choices, "usage": usage(answers)}

    async def completion(self, body: CompletionRequest) -> dict[str, Any]:
        return await self.completions.answer(body)

    async def infer(self, request: InferRequest, config: RequestConfig) -> InferResponse:
        with engine_errors():
            return await self.engine.infer_async(request, config)

    # ---- embeddings ---------------------------------------------------------------------------
    async def embeddings(self, body: EmbeddingRequest) -> dict[str, Any]:
        adapter = self.adapter_for(body.model)
        if body.messages is not None:  # vLLM's chat form: one item, its media fetched as chat requests' are
            item = await self._embedding_item(body)
            texts: list[Any] = [item]
            counted = [TAG_RE.sub("", m["content"]) for m in item["messages"] if m["content"]]
        else:
            texts = counted = self._embedding_texts(body.input)
        with engine_errors():  # embeddings queue on the scheduler's thread: full is a 429, closing a 503
            try:
                vectors = await asyncio.to_thread(self.engine.embed, texts, adapter)
            except NotImplementedError as exc:
                raise ApiError(400, str(exc), "model", "unsupported") from None
            except ConfigError as exc:
                raise ApiError(400, str(exc), "input" if body.messages is None else "messages",
                               "context_length_exceeded" if body.messages is None else "invalid_value") from None
            except DataError as exc:  # media that cannot be read, a cut through an image's tokens
                raise ApiError(400, str(exc), "messages", "invalid_media") from None
        tokens = sum(self.engine_tokens(t) for t in counted)
        data = []
        for i, v in enumerate(vectors):
            v = shortened(v, body.dimensions)  # Matryoshka: the first N dimensions, a unit vector again
            value: Any = v if body.encoding_format == "float" else \
                base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode()
            data.append({"object": "embedding", "index": i, "embedding": value})
        return {"object": "list", "data": data, "model": body.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    async def _embedding_item(self, body: EmbeddingRequest) -> dict[str, Any]:
        """The request's messages as one item {"messages", "images", ...}; media URLs checked and http(s) media
        downloaded by the same rules as chat requests' (local paths only under --allow_local_media)."""
        if not getattr(self.engine, "embeds_messages", False):
            raise ApiError(400, "messages: chat-style embeddings need an embedding model; serve a run trained with "
                           "--task_type embedding (or a model with --task_type embedding)", "messages", "unsupported")
        messages, media, params = self._messages(body)
        await download_media(media, self.settings.allow_private_media_urls, params, self.settings.max_media_bytes,
                             self.settings.media_timeout_s)
        return {"messages": [{"role": m["role"], "content": m["content"]} for m in messages],
                **{k: v for k, v in media.items() if v}}

    def _embedding_texts(self, value: Any) -> list[str]:
        tokenizer = getattr(self.engine, "tokenizer", None)
        single = isinstance(value, str) or bool(value and isinstance(value[0], int))
        items = [value] if single else list(value)
        if not items:
            raise ApiError(400, "input: must not be empty", "input", "invalid_value")
        texts = []
        for k, item in enumerate(items):
            if isinstance(item, list):
                if tokenizer is None:
                    raise ApiError(400, "input: token ids need a local engine", "input", "invalid_value")
                check_token_ids(item, self.engine, "input" if single else f"input.{k}")
                item = tokenizer.decode(item)
            if not item:
                raise ApiError(400, "input: empty strings cannot be embedded", "input", "invalid_value")
            texts.append(item)
        return texts

    # ---- streaming ----------------------------------------------------------------------------
    async def chat_stream(self, body: ChatCompletionRequest) -> AsyncIterator[str]:
        request, config, use_tools = await self.chat_request(body)
        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.model}
        names = {t.function.name for t in body.tools or []}
        events = await self.events(request, config)
        return self._chat_chunks(events, config, head, use_tools, names, body)

    async def _chat_chunks(self, events, config, head, use_tools, names, body) -> AsyncIterator[str]:
        for i in range(config.n):
            yield sse({**head, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                            "finish_reason": None, "logprobs": None}]})
        held: dict[int, str] = {}
        totals = {"prompt": 0, "completion": 0}
        async for _k, event in merge_streams([events]):  # closes the engine's stream when the client goes away
            if use_tools:  # tool calls are parsed from the whole answer
                held[event.index] = held.get(event.index, "") + event.text
            elif event.text or event.logprobs:
                choice = {"index": event.index, "delta": {"content": event.text}, "finish_reason": None,
                          "logprobs": None}
                if config.logprobs:
                    choice["logprobs"] = {"content": [chat_logprob(lp) for lp in event.logprobs]}
                yield sse({**head, "choices": [choice]})
            if event.finish_reason is not None:
                totals["prompt"] = event.prompt_tokens
                totals["completion"] += event.completion_tokens
                delta, finish = {}, event.finish_reason
                if use_tools:
                    content, calls = parse_tool_calls(held.get(event.index, ""), names)
                    delta = {"content": content} if not calls else \
                        {"content": content, "tool_calls": [{**c, "index": k} for k, c in enumerate(calls)]}
                    finish = "tool_calls" if calls else finish
                yield sse({**head, "choices": [{"index": event.index, "delta": delta, "finish_reason": finish,
                                                "logprobs": None}]})
        if body.stream_options and body.stream_options.include_usage:
            yield usage_chunk(head, totals["prompt"], totals["completion"])
        yield "data: [DONE]\n\n"

    async def completion_stream(self, body: CompletionRequest) -> AsyncIterator[str]:
        return await self.completions.stream(body)

    async def events(self, request: InferRequest, config: RequestConfig) -> AsyncIterator[Any]:
        """The engine's events, started here so that a full queue or a bad prompt still gets its HTTP status
        (the first event is awaited before the response begins)."""
        events = self.engine.stream_async(request, config).__aiter__()
        try:
            with engine_errors():
                first = await events.__anext__()
        except StopAsyncIteration:
            return Started(None, events)
        return Started(first, events)


@contextlib.contextmanager
def engine_errors() -> Iterator[None]:
    """The engine's refusals as HTTP errors: a full queue 429, shutting down 503, a bad prompt 400."""
    try:
        yield
    except QueueFullError as exc:
        status, code = (503, "shutting_down") if isinstance(exc, ShuttingDownError) else (429, "queue_full")
        raise ApiError(status, str(exc), None, code) from None
    except (TemplateError, ConfigError) as exc:
        raise ApiError(400, str(exc), "messages", "invalid_value") from None


class Started:
    """An engine's event stream whose first event has arrived: that event, then the rest; `aclose` reaches the
    engine's stream even before the first event is read again (so its answer is dropped)."""

    def __init__(self, first: Any, events: Any):
        self.first, self.events = first, events

    def __aiter__(self) -> "Started":
        return self

    async def __anext__(self) -> Any:
        if self.first is not None:
            first, self.first = self.first, None
            return first
        return await self.events.__anext__()

    async def aclose(self) -> None:
        close = getattr(self.events, "aclose", None)
        if close is not None:
            await close()


def chat_logprob(lp: Any) -> dict[str, Any]:
    return {"token": lp.token, "logprob": lp.logprob, "bytes": list(lp.token.encode()),
            "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in lp.top]}


def usage(answers: list[InferResponse]) -> dict[str, int]:
    prompt = answers[0].prompt_tokens if answers else 0
    completion = sum(a.completion_tokens for a in answers)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

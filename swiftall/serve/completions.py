"""`/v1/completions`: every prompt form OpenAI documents -- a string, a list of strings, a list of token ids, a list
of token-id lists -- one choice per prompt (n each, index `k * n + j`), prompts answered concurrently (so they
batch), `echo` (with `logprobs`, the prompt's own tokens get their log-probabilities too, as log-likelihood scoring
by lm-evaluation-harness needs), `max_tokens: 0` with echo (score only), and streaming of several prompts."""
from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, AsyncIterator, Optional, Union

from ..infer.engine import InferRequest, InferResponse, RequestConfig, TokenLogprob
from ..infer.scoring import prompt_logprobs
from .errors import ApiError
from .protocol import CompletionRequest
from .stream import merge_streams, sse, usage_chunk

Prompt = Union[str, list[int]]


def tokenizer_of(engine: Any) -> Any:
    return getattr(engine, "tokenizer", None) or getattr(getattr(engine, "template", None), "tokenizer", None)


def vocab_size(engine: Any) -> Optional[int]:
    config = getattr(getattr(engine, "model", None), "config", None)
    sizes = [getattr(config, "vocab_size", None)]
    tokenizer = tokenizer_of(engine)
    if tokenizer is not None:
        sizes.append(len(tokenizer))
    sizes = [s for s in sizes if isinstance(s, int)]
    return max(sizes) if sizes else None


def prompts_of(body: CompletionRequest, engine: Any) -> list[Prompt]:
    value = body.prompt
    single = isinstance(value, str) or (bool(value) and all(isinstance(v, int) for v in value))
    items: list[Prompt] = [value if isinstance(value, str) else list(value)] if single else list(value)
    if not items:
        raise ApiError(400, "prompt: must not be empty", "prompt", "invalid_value")
    for k, item in enumerate(items):
        if isinstance(item, list):
            check_token_ids(item, engine, "prompt" if single else f"prompt.{k}")
    return items


def check_token_ids(ids: list[int], engine: Any, where: str) -> None:
    """ApiError 400 for an empty list or an id outside the model's vocabulary."""
    if not ids:
        raise ApiError(400, f"{where}: a token-id prompt must not be empty", where, "invalid_value")
    vocab = vocab_size(engine)
    bad = next((t for t in ids if t < 0 or (vocab is not None and t >= vocab)), None)
    if bad is not None:
        raise ApiError(400, f"{where}: token id {bad} is outside this model's vocabulary (0 to {(vocab or 1) - 1})",
                       where, "invalid_value")


class Completions:
    """The completions half of the handlers (`h`: Handlers, for the engine, settings and shared translation)."""

    def __init__(self, handlers: Any):
        self.h = handlers

    async def prepare(self, body: CompletionRequest) -> tuple[list[Prompt], list[InferRequest], RequestConfig]:
        adapter = self.h.adapter_for(body.model)
        if body.max_tokens == 0 and not body.echo:
            raise ApiError(400, "max_tokens: 0 asks for no answer; it is only meaningful with echo (to score the "
                           "prompt)", "max_tokens", "invalid_value")
        prompts = prompts_of(body, self.h.engine)
        requests = [InferRequest(messages=[], prompt=p, adapter=adapter) if isinstance(p, str) else
                    InferRequest(messages=[], prompt_ids=p, adapter=adapter) for p in prompts]
        counts = await asyncio.gather(*(self.h.count(r, "prompt") for r in requests))
        for k, count in enumerate(counts):
            if count == 0:  # None: the engine cannot tell
                where = "prompt" if len(prompts) == 1 else f"prompt.{k}"
                raise ApiError(400, f"{where}: the prompt encodes to no tokens", where, "invalid_value")
        wanted = 16 if body.max_tokens is None else max(1, body.max_tokens)  # 0 (echo only) generates nothing
        config = self.h.config(body, wanted, max(c or 0 for c in counts))
        config.logprobs, config.top_logprobs = body.logprobs is not None, body.logprobs or 0
        return prompts, requests, config

    # ---- echo ---------------------------------------------------------------------------------
    def prompt_ids(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, list):
            return prompt
        tokenizer = tokenizer_of(self.h.engine)
        if tokenizer is None:
            raise ApiError(400, "echo with logprobs needs a local engine with a tokenizer", "echo", "unsupported")
        return tokenizer(prompt, add_special_tokens=True)["input_ids"]

    def echo_text(self, prompt: Prompt) -> str:
        if isinstance(prompt, str):
            return prompt
        tokenizer = tokenizer_of(self.h.engine)
        if tokenizer is None:
            raise ApiError(400, "echo of token-id prompts needs a local engine with a tokenizer", "echo",
                           "unsupported")
        return tokenizer.decode(prompt)

    async def scored(self, prompts: list[Prompt], adapter: Optional[str], body: CompletionRequest
                     ) -> list[Optional[list[TokenLogprob]]]:
        """Each prompt's tokens with their log-probabilities (one forward for all), when echo and logprobs are both
        asked for; else Nones."""
        if not body.echo or body.logprobs is None:
            return [None] * len(prompts)
        rows = [self.prompt_ids(p) for p in prompts]
        try:
            scored = await asyncio.to_thread(prompt_logprobs, self.h.engine, rows, adapter, body.logprobs)
        except NotImplementedError as exc:
            raise ApiError(400, str(exc), "echo", "unsupported") from None
        tokenizer = tokenizer_of(self.h.engine)
        firsts = [tokenizer.decode([ids[0]]) if tokenizer is not None else "" for ids in rows]
        return [[TokenLogprob(first, None, []) if lp is None else lp for lp in row]  # type: ignore[arg-type]
                for first, row in zip(firsts, scored)]

    # ---- whole answers ------------------------------------------------------------------------
    async def answer(self, body: CompletionRequest) -> dict[str, Any]:
        prompts, requests, config = await self.prepare(body)
        scored, generated = await asyncio.gather(
            self.scored(prompts, requests[0].adapter, body),
            asyncio.gather(*(self._generate(p, r, config, body) for p, r in zip(prompts, requests))))
        choices, prompt_tokens, completion_tokens = [], 0, 0
        for k, (prompt, answers) in enumerate(zip(prompts, generated)):
            echo = self.echo_text(prompt) if body.echo else ""
            prompt_tokens += answers[0].prompt_tokens
            for j, a in enumerate(answers):
                completion_tokens += a.completion_tokens
                logprobs = logprobs_body([*(scored[k] or []), *(a.logprobs or [])]) if config.logprobs else None
                choices.append({"index": k * config.n + j, "text": echo + a.text + (body.suffix or ""),
                                "finish_reason": a.finish_reason, "logprobs": logprobs})
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                "model": body.model, "choices": choices,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}

    async def _generate(self, prompt: Prompt, request: InferRequest, config: RequestConfig, body: CompletionRequest
                        ) -> list[InferResponse]:
        if body.max_tokens == 0:
            count = len(self.prompt_ids(prompt))
            return [InferResponse("", "length", count, 0) for _ in range(config.n)]
        response = await self.h.infer(request, config)
        return [response, *response.choices]

    # ---- streaming ----------------------------------------------------------------------------
    async def stream(self, body: CompletionRequest) -> AsyncIterator[str]:
        prompts, requests, config = await self.prepare(body)
        head = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                "model": body.model}
        scored = await self.scored(prompts, requests[0].adapter, body)
        streams = await self._start(requests, config) if body.max_tokens != 0 else []
        return self._chunks(body, config, head, prompts, scored, streams)

    async def _start(self, requests: list[InferRequest], config: RequestConfig) -> list[AsyncIterator[Any]]:
        """Every prompt's events, started together; an error (which still gets its HTTP status, the response not
        having begun) closes the streams already started."""
        started = await asyncio.gather(*(self.h.events(r, config) for r in requests), return_exceptions=True)
        failed = [s for s in started if isinstance(s, BaseException)]
        if failed:
            for stream in started:
                if not isinstance(stream, BaseException):
                    await stream.aclose()
            raise failed[0]
        return list(started)

    async def _chunks(self, body: CompletionRequest, config: RequestConfig, head: dict, prompts: list[Prompt],
                      scored: list, streams: list) -> AsyncIterator[str]:
        for k, prompt in enumerate(prompts):
            if body.echo:
                for j in range(config.n):
                    lp = logprobs_body(scored[k]) if scored[k] is not None else None
                    finish = "length" if not streams else None
                    yield sse({**head, "choices": [{"index": k * config.n + j, "text": self.echo_text(prompt),
                                                    "finish_reason": finish, "logprobs": lp}]})
        totals = {"prompt": 0, "completion": 0}
        async for k, event in merge_streams(streams):
            if event.text or event.finish_reason:
                lp = logprobs_body(event.logprobs) if config.logprobs else None
                text = event.text + (body.suffix or "" if event.finish_reason else "")
                yield sse({**head, "choices": [{"index": k * config.n + event.index, "text": text,
                                                "finish_reason": event.finish_reason, "logprobs": lp}]})
            if event.finish_reason:
                totals["prompt"] += event.prompt_tokens if event.index == 0 else 0
                totals["completion"] += event.completion_tokens
        if body.stream_options and body.stream_options.include_usage:
            yield usage_chunk(head, totals["prompt"], totals["completion"])
        yield "data: [DONE]\n\n"


def logprobs_body(items: list[TokenLogprob]) -> dict[str, Any]:
    """OpenAI's completions logprobs: tokens, token_logprobs, top_logprobs, text_offset (None for a prompt's first
    token, which has no log-probability)."""
    offsets, at = [], 0
    for lp in items:
        offsets.append(at)
        at += len(lp.token)
    return {"tokens": [lp.token for lp in items], "token_logprobs": [lp.logprob for lp in items],
            "top_logprobs": [None if lp.logprob is None else dict(lp.top) for lp in items], "text_offset": offsets}

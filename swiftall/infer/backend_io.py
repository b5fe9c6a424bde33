"""What passes between swiftall and vLLM / SGLang / LMDeploy, as plain functions tested without the backends
installed: sampling settings, the backend's (cumulative or incremental) outputs -> StreamEvents, decoded media ->
each backend's multimodal input, and the LoRA limits an engine must be started with for the adapters given. The
engines that use them are in backends.py.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from .engine import InferResponse, RequestConfig, StreamEvent, TokenLogprob

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)   # vLLM refuses other values of max_lora_rank


# ---- settings translation -----------------------------------------------------------------------------
def _common(config: RequestConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("temperature", "top_p", "top_k", "repetition_penalty"):
        if getattr(config, key) is not None:
            out[key] = getattr(config, key)
    return out


def _settings(config: RequestConfig, names: dict[str, str]) -> dict[str, Any]:
    """The settings a backend has a name for (`names`: ours -> its), unset ones left to the backend's defaults."""
    out = {names["max_new_tokens"]: config.max_new_tokens, "n": config.n, **_common(config)}
    for ours in ("stop", "stop_token_ids", "seed", "ignore_eos"):
        value = getattr(config, ours)
        if ours in names and value not in (None, [], False):
            out[names[ours]] = list(value) if isinstance(value, list) else value
    return out


def vllm_sampling_kwargs(config: RequestConfig) -> dict[str, Any]:
    """RequestConfig -> keyword arguments of `vllm.SamplingParams`."""
    out = _settings(config, {"max_new_tokens": "max_tokens", "stop": "stop", "stop_token_ids": "stop_token_ids",
                             "seed": "seed", "ignore_eos": "ignore_eos"})
    if config.logprobs or config.top_logprobs:
        out["logprobs"] = max(config.top_logprobs, 0)  # vLLM: the chosen token plus this many alternatives
    return out


def sglang_sampling_params(config: RequestConfig) -> dict[str, Any]:
    """RequestConfig -> SGLang's `sampling_params` dict (Engine.async_generate)."""
    return _settings(config, {"max_new_tokens": "max_new_tokens", "stop": "stop", "stop_token_ids": "stop_token_ids",
                              "ignore_eos": "ignore_eos"})


def lmdeploy_gen_kwargs(config: RequestConfig) -> dict[str, Any]:
    """RequestConfig -> keyword arguments of `lmdeploy.GenerationConfig`."""
    out = _settings(config, {"max_new_tokens": "max_new_tokens", "stop": "stop_words",
                             "stop_token_ids": "stop_token_ids", "seed": "random_seed", "ignore_eos": "ignore_eos"})
    if config.logprobs or config.top_logprobs:
        out["logprobs"] = max(config.top_logprobs, 1)
    return out


# ---- whole outputs -> responses ------------------------------------------------------------------------
def from_vllm_output(output: Any, decode: Any = None) -> InferResponse:
    """A finished vLLM `RequestOutput` -> InferResponse (the other n-1 answers in `.choices`)."""
    answers = []
    for choice in output.outputs:
        logprobs = None
        if choice.logprobs:
            logprobs = [vllm_logprob(t, alts, decode) for t, alts in zip(choice.token_ids, choice.logprobs)]
        answers.append(InferResponse(text=choice.text, finish_reason=_finish(choice.finish_reason),
                                     prompt_tokens=len(output.prompt_token_ids or []),
                                     completion_tokens=len(choice.token_ids), logprobs=logprobs,
                                     token_ids=list(choice.token_ids)))
    first, *others = answers
    first.choices = others
    return first


def vllm_logprob(token: int, alternatives: dict[int, Any], decode: Any = None) -> TokenLogprob:
    """One position of vLLM's logprobs ({token id: Logprob(logprob, rank, decoded_token)})."""
    chosen = alternatives[token]
    ranked = sorted(alternatives.items(), key=lambda kv: -kv[1].logprob)
    top = [(lp.decoded_token or (decode([t]) if decode else str(t)), lp.logprob) for t, lp in ranked]
    return TokenLogprob(chosen.decoded_token or (decode([token]) if decode else ""), chosen.logprob, top)


def from_sglang_output(output: Any) -> InferResponse:
    """SGLang `Engine.generate` result (a dict, or a list of dicts when n > 1) -> InferResponse."""
    items = output if isinstance(output, list) else [output]
    answers = []
    for item in items:
        meta = item.get("meta_info", {})
        answers.append(InferResponse(text=item["text"], finish_reason=_finish(sglang_finish(meta)),
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


def sglang_finish(meta: dict[str, Any]) -> Optional[str]:
    reason = meta.get("finish_reason")
    return reason.get("type") if isinstance(reason, dict) else reason


# ---- streamed outputs -> events ------------------------------------------------------------------------
class Deltas:
    """Turns one answer's cumulative outputs (full text and token lists so far) into the new piece of each."""

    def __init__(self) -> None:
        self.text, self.tokens = "", 0

    def text_piece(self, text: str, cumulative: bool = True) -> str:
        if not cumulative or not text.startswith(self.text):
            piece = text if not cumulative else text[len(self.text):]
            self.text += piece
            return piece
        piece, self.text = text[len(self.text):], text
        return piece

    def new_items(self, items: Sequence[Any]) -> list[Any]:
        fresh = list(items[self.tokens:])
        self.tokens = len(items)
        return fresh


def vllm_events(output: Any, deltas: dict[int, Deltas], decode: Callable) -> list[StreamEvent]:
    """A vLLM `RequestOutput` (cumulative, vLLM's default output kind) -> the new events of each of its answers."""
    events = []
    for position, choice in enumerate(output.outputs):
        index = getattr(choice, "index", position)
        track = deltas.setdefault(index, Deltas())
        seen = track.tokens
        fresh_ids = track.new_items(choice.token_ids)
        logprobs = []
        if choice.logprobs:
            logprobs = [vllm_logprob(t, alts, decode)
                        for t, alts in zip(fresh_ids, list(choice.logprobs)[seen:seen + len(fresh_ids)])]
        event = StreamEvent(text=track.text_piece(choice.text), index=index, logprobs=logprobs)
        if choice.finish_reason is not None:
            event.finish_reason = _finish(choice.finish_reason)
            event.prompt_tokens = len(output.prompt_token_ids or [])
            event.completion_tokens = len(choice.token_ids)
        events.append(event)
    return events


def sglang_event(chunk: dict[str, Any], index: int, track: Deltas, decode: Callable) -> StreamEvent:
    """One streamed SGLang chunk ({"text", "meta_info"}; text cumulative unless the server streams increments)."""
    meta = chunk.get("meta_info", {})
    fresh = track.new_items(meta.get("output_token_logprobs") or [])
    tops = list(meta.get("output_top_logprobs") or [])[track.tokens - len(fresh):track.tokens]
    logprobs = [TokenLogprob(_sglang_text(item, decode), float(item[0]),
                             [(_sglang_text(alt, decode), float(alt[0])) for alt in (top or [])])
                for item, top in zip(fresh, tops + [None] * (len(fresh) - len(tops)))]
    event = StreamEvent(text=track.text_piece(chunk.get("text", "")), index=index, logprobs=logprobs)
    reason = sglang_finish(meta)
    if reason is not None:
        event.finish_reason = _finish(reason)
        event.prompt_tokens = int(meta.get("prompt_tokens", 0))
        event.completion_tokens = int(meta.get("completion_tokens", 0))
    return event


def _sglang_text(item: Sequence[Any], decode: Callable) -> str:
    """SGLang's (logprob, token id, text) triple; the text is None unless the server returns text in logprobs."""
    return item[2] if len(item) > 2 and item[2] is not None else decode([item[1]])


def lmdeploy_event(out: Any, index: int, decode: Callable) -> StreamEvent:
    """One streamed LMDeploy `GenOut` (incremental: `response`, `token_ids` and `logprobs` of this step only)."""
    logprobs = []
    for token, alternatives in zip(out.token_ids or [], out.logprobs or []):
        ranked = sorted(alternatives.items(), key=lambda kv: -kv[1])
        logprobs.append(TokenLogprob(decode([token]), float(alternatives.get(token, ranked[0][1])),
                                     [(decode([t]), float(v)) for t, v in ranked]))
    if out.finish_reason == "error":
        raise RuntimeError(f"LMDeploy: {out.response or 'the request failed'}")
    event = StreamEvent(text=out.response or "", index=index, logprobs=logprobs)
    if out.finish_reason is not None:
        event.finish_reason = _finish(out.finish_reason)
        event.prompt_tokens, event.completion_tokens = int(out.input_token_len or 0), int(out.generate_token_len or 0)
    return event


# ---- media ---------------------------------------------------------------------------------------------
def vllm_multi_modal_data(loaded: dict[str, list]) -> dict[str, Any]:
    """Decoded media (PIL images, float32 waveforms, lists of PIL frames) -> vLLM's `multi_modal_data`:
    images as PIL images, audio as (waveform, sampling rate), videos as (frames, height, width, 3) arrays."""
    import numpy as np

    out: dict[str, Any] = {}
    if loaded.get("images"):
        out["image"] = list(loaded["images"])
    if loaded.get("audios"):
        out["audio"] = [(wave, rate) for wave, rate in loaded["audios"]]
    if loaded.get("videos"):
        out["video"] = [np.stack([np.asarray(frame) for frame in frames]) for frames in loaded["videos"]]
    return out


def sglang_media_kwargs(loaded: dict[str, list]) -> dict[str, Any]:
    """Decoded media -> `Engine.async_generate`'s image_data / audio_data / video_data (one request's lists)."""
    out: dict[str, Any] = {}
    if loaded.get("images"):
        out["image_data"] = list(loaded["images"])
    if loaded.get("audios"):
        out["audio_data"] = [wave for wave, _rate in loaded["audios"]]
    if loaded.get("videos"):
        out["video_data"] = [list(frames) for frames in loaded["videos"]]
    return out


def lmdeploy_messages(messages: list[dict[str, Any]], loaded: dict[str, list]) -> list[dict[str, Any]]:
    """Messages with `<image>` tags -> LMDeploy's GPT-4V-style messages, each image an `image_data` part holding the
    PIL image (LMDeploy's vision pipeline takes images; audio and video are refused by the caller)."""
    images = list(loaded.get("images") or [])
    out = []
    for m in messages:
        content = m.get("content") or ""
        if not isinstance(content, str) or "<image>" not in content:
            out.append(dict(m))
            continue
        parts: list[dict[str, Any]] = []
        for k, text in enumerate(content.split("<image>")):
            if k and images:
                parts.append({"type": "image_data", "image_data": {"data": images.pop(0)}})
            if text:
                parts.append({"type": "text", "text": text})
        out.append({**m, "content": parts})
    return out


# ---- LoRA limits ---------------------------------------------------------------------------------------
def adapter_ranks(adapters: dict[str, str]) -> dict[str, int]:
    """The largest LoRA rank of each adapter folder (its `r`, or the largest of its rank_pattern)."""
    ranks = {}
    for name, path in adapters.items():
        config = _adapter_config(path)
        ranks[name] = max([int(config.get("r") or 8), *map(int, (config.get("rank_pattern") or {}).values())])
    return ranks


def _adapter_config(path: str) -> dict[str, Any]:
    file = Path(path) / "adapter_config.json"
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        from ..utils.errors import ConfigError

        raise ConfigError(f"--adapters: {file} cannot be read ({exc}); point at a LoRA adapter folder") from None


def vllm_lora_kwargs(adapters: dict[str, str]) -> dict[str, Any]:
    """AsyncEngineArgs' LoRA settings for these adapters: every adapter fits in one batch, ranks rounded up to a
    value vLLM accepts."""
    if not adapters:
        return {"enable_lora": False}
    rank = max(adapter_ranks(adapters).values())
    allowed = next((r for r in VLLM_LORA_RANKS if r >= rank), None)
    if allowed is None:
        from ..utils.errors import ConfigError

        raise ConfigError(f"--adapters: LoRA rank {rank} is above vLLM's largest ({VLLM_LORA_RANKS[-1]})")
    return {"enable_lora": True, "max_loras": len(adapters), "max_cpu_loras": len(adapters), "max_lora_rank": allowed}


def sglang_lora_kwargs(adapters: dict[str, str]) -> dict[str, Any]:
    """SGLang's server arguments for these adapters (named lora_paths, batch and rank limits, target modules)."""
    if not adapters:
        return {}
    targets = set()
    for path in adapters.values():
        modules = _adapter_config(path).get("target_modules") or []
        targets |= {modules} if isinstance(modules, str) else set(modules)
    return {"enable_lora": True, "lora_paths": [f"{name}={path}" for name, path in adapters.items()],
            "max_loras_per_batch": len(adapters), "max_lora_rank": max(adapter_ranks(adapters).values()),
            "lora_target_modules": sorted(targets) or None}

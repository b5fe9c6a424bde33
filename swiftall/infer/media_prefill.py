"""Multimodal requests in the continuous batch: the prefill runs the family's own forward with the request's media
inputs, the decode steps are plain text steps beside every other row.

A multimodal prompt differs from a text one only in its prefill: the processor's pixel values / audio features /
grids (`Encoded.extra`) are encoded by the vision or audio tower and written over the placeholder tokens' embeddings,
and some families give those tokens positions of their own. Once the prompt's keys and values are in the KV cache,
each new token is a text token: its step needs its id and its position, nothing else. So a multimodal sequence is
prefilled alone (batch 1, no padding: the family computes its own positions exactly as `generate` does), its cache
rows join the batch's, and it decodes with the text rows.

Positions: M-RoPE families (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, Qwen2.5-Omni ...) give an image's tokens 3-D positions
that advance by the image's height/width, not its token count, so the text after it sits at `index + delta`. Their
forward computes the prefill positions itself and keeps that delta in a `rope_deltas` attribute (transformers'
convention for these models, which `generate` reads back for its decode steps); the scheduler reads it right after
the prefill and keeps it per sequence (`Sequence.pos`), since the model's one attribute belongs to whichever
request ran last. A decode step's 2-D position ids are broadcast to the three M-RoPE axes by these models, which is
right for text tokens (their three coordinates are equal).

Families that cannot join (`unbatchable`): their decode steps need the media again, or their cache is not the
decoder-only layout the scheduler splices. They keep the `generate` path (pt.py), run as a job between batch steps.
"""
from __future__ import annotations

from typing import Any, Optional

# model_type -> why its multimodal requests cannot join the batch
NOT_BATCHED = {
    "mllama": "its cross-attention layers read the image states and a cross-attention mask at every decode step",
    "whisper": "an encoder-decoder: its decode steps attend to the encoder's output",
}


def unbatchable(model: Any) -> Optional[str]:
    """Why this model's multimodal requests must run through `generate` (None: they join the batch)."""
    config = getattr(model, "config", None)
    kind = getattr(config, "model_type", "")
    if kind in NOT_BATCHED:
        return NOT_BATCHED[kind]
    if getattr(config, "is_encoder_decoder", False):
        return "an encoder-decoder model: its decode steps attend to the encoder's output"
    return None


def media_inputs(extras: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The request's model inputs besides its ids, or None when it has no media: a text prompt on some families
    still carries token-type ids (Qwen2-VL's `mm_token_type_ids`, Gemma 3's `token_type_ids`), all zeros, which
    change nothing in a forward, so such a request is a plain text row."""
    extras = {k: v for k, v in extras.items() if k != "truncated_from"}
    if all(k.endswith("token_type_ids") and hasattr(v, "any") and not v.any() for k, v in extras.items()):
        return None
    return extras


def rope_holders(model: Any) -> list[Any]:
    """The modules that keep M-RoPE deltas (`rope_deltas`) between a prefill and its decode steps."""
    return [m for m in model.modules() if hasattr(m, "rope_deltas")]


def device_inputs(extras: dict[str, Any], device: Any) -> dict[str, Any]:
    """A request's media inputs on the model's device (non-tensor values as they are)."""
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in extras.items()}


def forget_deltas(holders: list[Any]) -> None:
    """Clear the kept deltas so the next forward computes its own (a stale one would shift its positions)."""
    for holder in holders:
        holder.rope_deltas = None


def read_delta(holders: list[Any]) -> int:
    """The position shift of the tokens after a prompt's media, as its prefill computed it (0 for 1-D RoPE)."""
    for holder in holders:
        delta = holder.rope_deltas
        if delta is not None:
            return int(delta.reshape(-1)[0])
    return 0

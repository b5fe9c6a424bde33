"""The scheduler's KV cache: transformers' `DynamicCache` with layers that grow in place, and the surgery on its
rows: newly prefilled rows spliced into the running batch's cache (left-padded to a common width), finished rows
dropped and the columns no remaining row uses trimmed."""
from __future__ import annotations

import functools
from typing import Any

_SLACK_LAYER: Any = None


@functools.lru_cache(maxsize=None)
def cache_name() -> str:
    """The forward's keyword for the KV cache: `cache` since transformers renamed `past_key_values` (5.2x; the old
    name still works there but warns once per process), `past_key_values` before."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    return "cache" if "cache" in getattr(CausalLMOutputWithPast, "__dataclass_fields__", {}) else "past_key_values"


def new_cache() -> Any:
    from transformers import DynamicCache

    cache = DynamicCache()
    cache.layer_class_to_replicate = _slack_layer_class()
    return cache


def _slack_layer_class() -> Any:
    """A transformers `DynamicLayer` whose keys/values live in buffers with room to grow.

    `DynamicLayer` concatenates every new token onto the whole cache, copying all of it once per decode step (at
    batch 16 on the CPU that was about 14% of the step). Here a step writes one column in place; the buffer grows
    by half its size when full. `keys`/`values` stay plain tensors (views of the buffers), so the scheduler's
    cache surgery can still assign new tensors: a layer whose `keys` is no longer its buffer's view re-adopts it."""
    global _SLACK_LAYER
    if _SLACK_LAYER is None:
        from transformers.cache_utils import DynamicLayer

        class SlackLayer(DynamicLayer):
            buffers: Any = None

            def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
                if not self.is_initialized:
                    self.lazy_initialization(key_states, value_states)
                used = self.keys.shape[-2] if self.keys.numel() else 0
                need = used + key_states.shape[-2]
                kbuf, vbuf = self.buffers or (None, None)
                if (kbuf is None or kbuf.shape[-2] < need or kbuf.shape[:2] != key_states.shape[:2]
                        or self.keys.data_ptr() != kbuf.data_ptr() or self.values.data_ptr() != vbuf.data_ptr()):
                    room = need + max(16, need // 2)
                    kbuf = key_states.new_empty((*key_states.shape[:2], room, key_states.shape[-1]))
                    vbuf = value_states.new_empty((*value_states.shape[:2], room, value_states.shape[-1]))
                    if used:
                        kbuf[..., :used, :] = self.keys
                        vbuf[..., :used, :] = self.values
                    self.buffers = (kbuf, vbuf)
                kbuf[..., used:need, :] = key_states
                vbuf[..., used:need, :] = value_states
                self.keys, self.values = kbuf[..., :need, :], vbuf[..., :need, :]
                return self.keys, self.values

        _SLACK_LAYER = SlackLayer
    return _SLACK_LAYER


def cat_left_padded(a: Any, b: Any, width: int, dim: int) -> Any:
    return __import__("torch").cat([_pad_left(a, width, dim), _pad_left(b, width, dim)], dim=0)


def _pad_left(t: Any, width: int, dim: int) -> Any:
    import torch

    missing = width - t.shape[dim]
    if missing == 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([torch.zeros(shape, dtype=t.dtype, device=t.device), t], dim=dim)


def splice_rows(cache: Any, mask: Any, new: Any, new_mask: Any) -> Any:
    """Newly prefilled rows (their cache and mask) join a running batch's cache, both left-padded to the wider of
    the two; returns the joined mask."""
    width = max(mask.shape[1], new_mask.shape[1])
    for old, added in zip(cache.layers, new.layers):
        old.keys = cat_left_padded(old.keys, added.keys, width, dim=-2)
        old.values = cat_left_padded(old.values, added.values, width, dim=-2)
    return cat_left_padded(mask, new_mask, width, dim=-1)


def keep_rows(cache: Any, mask: Any, keep: list[int]) -> Any:
    """Only the rows `keep` stay in the cache, and leading columns that none of them uses are trimmed; returns their
    mask."""
    import torch

    index = torch.tensor(keep, dtype=torch.long, device=mask.device)
    used = mask.index_select(0, index)
    start = int(used.any(dim=0).nonzero()[0])
    for layer in cache.layers:
        layer.keys = layer.keys.index_select(0, index)[..., start:, :]
        layer.values = layer.values.index_select(0, index)[..., start:, :]
    return used[:, start:]

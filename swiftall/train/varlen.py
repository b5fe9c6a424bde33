"""Per-sample attention for padding-free rows on SDPA (CPU and GPUs without flash attention).

A padding-free row holds several samples; transformers keeps them apart with a block-diagonal mask over the whole
row, which costs attention over the full row length. This attention function instead runs SDPA's causal kernel on
each sample's slice (found from the position ids restarting at 0), so attention costs the sum of the samples'
squared lengths and no mask is built at all. Registered under the name ``sdpa_varlen``; used only for training
rows from PaddingFreeCollator (batch of one row). Right-padded evaluation batches are exact without a mask too:
causal attention never looks at the padding that follows the real tokens.
"""
from __future__ import annotations

from typing import Any

NAME = "sdpa_varlen"


def sdpa_varlen_forward(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                        scaling: float | None = None, **kwargs: Any) -> tuple[Any, None]:
    import torch
    import torch.nn.functional as F
    from transformers.integrations.sdpa_attention import repeat_kv

    groups = getattr(module, "num_key_value_groups", 1)
    gqa = groups > 1 and query.device.type == "cpu"  # CPU's kernel reads shared kv heads in place
    if groups > 1 and not gqa:
        key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    position_ids = kwargs.get("position_ids")
    length = query.shape[2]
    if position_ids is not None and query.shape[0] == 1 and key.shape[2] == length:
        starts = (position_ids[0] == 0).nonzero().flatten().tolist()
        bounds = (starts if starts and starts[0] == 0 else [0, *starts]) + [length]
    else:
        bounds = [0, length]
    p = dropout if module.training else 0.0
    sizes = [b - a for a, b in zip(bounds, bounds[1:])]  # split, not slices: one gradient concat, no zero fills
    pieces = [F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p, scale=scaling, enable_gqa=gqa)
              for q, k, v in zip(query.split(sizes, 2), key.split(sizes, 2), value.split(sizes, 2))]
    out = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=2)
    return out.transpose(1, 2).contiguous(), None


def use_varlen_attention(model: Any) -> bool:
    """Switch a model that runs SDPA to per-sample attention; returns whether it did."""
    from transformers import AttentionInterface

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(base.config, "_attn_implementation", None) != "sdpa":
        return False
    AttentionInterface.register(NAME, sdpa_varlen_forward)
    base.set_attn_implementation(NAME)
    return True

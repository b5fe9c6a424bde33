"""DPO pairs without padding, their shared prompt computed once (`--padding_free`, on by default for text DPO).

TRL's DPOTrainer stacks each batch as [chosen rows; rejected rows], padded to the longest, and runs the policy (and
the reference) over all of it: the prompt twice per pair, every pad token, and, on a CPU, the output layer at every
position. Here the model's forward, while a DPO loss is computed, packs each pair into one row instead:

    prompt (+ any common start of both answers) | rest of chosen | last shared token again | rest of rejected

with position ids continuing from the shared part in both branches and an attention mask that lets each branch see
the shared part and itself only. The repeated last shared token (same token, same position, same visible context)
gives the hidden state that predicts the rejected branch's first token, so TRL's own fused LM head (next-token
shift) scores the packed row as it is; its per-token outputs are then put back in the [2B, L-1] layout TRL expects,
zeros where a row has no label, as its padded path gives. The log-probs are the same up to float rounding (tested);
the tokens run through the model fall from 2 x the padded length per pair to prompt + both answers.

Only text batches take this path (input_ids and a right-padded attention mask); media batches, flash-attention
models (no custom masks), MoE router losses and context parallelism keep TRL's padded path.
"""
from __future__ import annotations

import contextlib
import contextvars
import types
from dataclasses import dataclass
from typing import Any, Optional

import torch

_PAIRED: contextvars.ContextVar[bool] = contextvars.ContextVar("swiftall_dpo_pairs", default=False)
IGNORE = -100
FIELDS = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1")
TEXT_KEYS = {"input_ids", "attention_mask", "use_cache"}


@contextlib.contextmanager
def paired_batches():
    """While active, a packed forward treats a batch of 2B rows as B (chosen, rejected) pairs."""
    token = _PAIRED.set(True)
    try:
        yield
    finally:
        _PAIRED.reset(token)


@dataclass
class PackedPairs:
    input_ids: torch.Tensor       # [B, N]
    position_ids: torch.Tensor    # [B, N]
    attention_mask: torch.Tensor  # [B, 1, N, N] bool, True = may attend
    labels: torch.Tensor          # [B, N]
    rows: torch.Tensor            # [M] row of TRL's [2B, L-1] output ...
    cols: torch.Tensor            # [M] ... its column
    pair: torch.Tensor            # [M] packed row holding that prediction ...
    index: torch.Tensor           # [M] ... its position in the packed [B, N-1] output
    shape: tuple[int, int]        # TRL's output shape [2B, L-1]


def _common_prefix(a: torch.Tensor, b: torch.Tensor) -> int:
    n = min(len(a), len(b))
    differ = (a[:n] != b[:n]).nonzero()
    return int(differ[0]) if len(differ) else n


def _pack_pair(chosen: torch.Tensor, rejected: torch.Tensor, lab_c: torch.Tensor, lab_r: torch.Tensor) -> dict:
    """One pair's packed row: tokens, positions, segment (0 shared, 1 chosen, 2 rejected), how far into the shared
    part each token may look, labels, and for each labelled token of either row the packed position predicting it."""
    lc, lr = len(chosen), len(rejected)
    s = _common_prefix(chosen, rejected)
    dup = 1 if (lr > s and s >= 1) else 0
    r_start = s - dup
    tokens = torch.cat([chosen, rejected[r_start:]])
    positions = torch.cat([torch.arange(lc), torch.arange(r_start, lr)])
    segment = torch.cat([torch.zeros(s, dtype=torch.long), torch.ones(lc - s, dtype=torch.long),
                         torch.full((lr - r_start,), 2, dtype=torch.long)])
    reach = torch.full((len(tokens),), s)  # shared positions a query may see: all of them, but the repeated token's
    reach[lc:] = s - dup                   # branch must not see the shared copy of itself
    shared_label = (lab_c[:s] != IGNORE) | (lab_r[:s] != IGNORE)
    labels = torch.cat([torch.where(shared_label, chosen[:s], IGNORE),
                        torch.where(lab_c[s:] != IGNORE, chosen[s:], IGNORE),
                        torch.full((dup,), IGNORE, dtype=chosen.dtype),
                        torch.where(lab_r[s:] != IGNORE, rejected[s:], IGNORE)])
    jc = (lab_c[1:] != IGNORE).nonzero().flatten() + 1       # labelled token positions of each row
    jr = (lab_r[1:] != IGNORE).nonzero().flatten() + 1
    pred_r = torch.where(jr < s, jr - 1, lc + jr - s - (1 - dup))
    return {"tokens": tokens, "positions": positions, "segment": segment, "reach": reach, "labels": labels,
            "jc": jc, "pred_c": jc - 1, "jr": jr, "pred_r": pred_r}


def pack_pairs(input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> Optional[PackedPairs]:
    """The packed batch for TRL's [chosen; rejected] rows, or None when the batch is not right-padded pairs."""
    rows, width = input_ids.shape
    lengths = attention_mask.sum(dim=1)
    if rows % 2 or not bool((attention_mask == (torch.arange(width) < lengths[:, None]).to(attention_mask)).all()):
        return None
    half = rows // 2
    ids, lab, lens = input_ids.cpu(), labels.cpu(), lengths.tolist()
    packs = [_pack_pair(ids[i, :lens[i]], ids[i + half, :lens[i + half]], lab[i, :lens[i]],
                        lab[i + half, :lens[i + half]]) for i in range(half)]
    n = max(len(p["tokens"]) for p in packs)
    tokens = torch.zeros(half, n, dtype=ids.dtype)
    positions = torch.zeros(half, n, dtype=torch.long)
    packed_labels = torch.full((half, n), IGNORE, dtype=ids.dtype)
    mask = torch.zeros(half, 1, n, n, dtype=torch.bool)
    out_rows, out_cols, out_pair, out_index = [], [], [], []
    for i, p in enumerate(packs):
        k = len(p["tokens"])
        tokens[i, :k], positions[i, :k], packed_labels[i, :k] = p["tokens"], p["positions"], p["labels"]
        q, key = torch.arange(k)[:, None], torch.arange(k)[None, :]
        seg = p["segment"]
        visible = (seg[None, :] == seg[:, None]) | ((seg[None, :] == 0) & (key < p["reach"][:, None]))
        mask[i, 0, :k, :k] = (key <= q) & visible
        mask[i, 0, torch.arange(k, n), torch.arange(k, n)] = True  # pad queries see themselves (no empty softmax)
        for row, j, pred in ((i, p["jc"], p["pred_c"]), (i + half, p["jr"], p["pred_r"])):
            out_rows.append(torch.full_like(j, row))
            out_cols.append(j - 1)
            out_pair.append(torch.full_like(j, i))
            out_index.append(pred)
    device = input_ids.device
    return PackedPairs(tokens.to(device), positions.to(device), mask.to(device), packed_labels.to(device),
                       *(torch.cat(x).to(device) for x in (out_rows, out_cols, out_pair, out_index)),
                       shape=(rows, width - 1))


def unpack_outputs(outputs: Any, packed: PackedPairs) -> Any:
    """TRL's per-token fields back in the [2B, L-1] layout of its padded batch (zeros where a row has no label)."""
    for name in FIELDS:
        value = getattr(outputs, name, None)
        if value is None:
            continue
        full = value.new_zeros(packed.shape)
        full = full.index_put((packed.rows, packed.cols), value[packed.pair, packed.index])
        setattr(outputs, name, full)
    mask = outputs.log_probs.new_zeros(packed.shape, dtype=torch.bool)
    outputs.label_mask = mask.index_put((packed.rows, packed.cols), torch.ones_like(packed.rows, dtype=torch.bool))
    outputs.loss = -outputs.log_probs.sum() / outputs.label_mask.sum().clamp(min=1)
    return outputs


def takes_custom_masks(model: Any) -> bool:
    """Whether the model's attention takes the per-pair mask (flash attention does not)."""
    return getattr(model.config, "_attn_implementation", None) in ("sdpa", "eager")


def _packable(kwargs: dict[str, Any]) -> bool:
    """A text batch in a DPO loss: input ids and a 2-D mask, nothing else given (peft passes its unused arguments as
    None)."""
    mask = kwargs.get("attention_mask")
    given = {key for key, value in kwargs.items() if value is not None and key != "return_dict"}
    return _PAIRED.get() and given <= TEXT_KEYS and mask is not None and mask.dim() == 2


def install(model: Any) -> bool:
    """Wraps TRL's fused forward (added by DPOTrainer) of the transformers model under peft, if there is one."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    fused = inner.__dict__.get("forward")
    if fused is None or getattr(fused, "_swiftall_pairs", False):
        return False

    def forward(self, *args, fused_lm_head=False, labels=None, **kwargs):
        if not (fused_lm_head and not args and labels is not None and _packable(kwargs)):
            return fused(*args, fused_lm_head=fused_lm_head, labels=labels, **kwargs)
        packed = pack_pairs(kwargs["input_ids"], kwargs["attention_mask"], labels)
        if packed is None:
            return fused(fused_lm_head=True, labels=labels, **kwargs)
        outputs = fused(input_ids=packed.input_ids, attention_mask=packed.attention_mask,
                        position_ids=packed.position_ids, labels=packed.labels, fused_lm_head=True,
                        use_cache=False)
        return unpack_outputs(outputs, packed)

    inner.forward = types.MethodType(forward, inner)
    inner.forward.__func__._swiftall_pairs = True
    return True

"""Batching encoded rows.

- PadCollator: pad to the longest row of the batch (right side), labels -100 on padding.
- PaddingFreeCollator: concatenate the batch into one row with no pad tokens; position ids restart at each
  sample, and without an attention mask transformers builds a per-sample (block-diagonal causal) mask from them,
  so no token attends across samples. Used for --padding_free and for --packing (rows pre-packed by pack_rows).
"""
from __future__ import annotations

from typing import Any

from ..templates import IGNORE


class PadCollator:
    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None):
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        longest = max(len(r["input_ids"]) for r in rows)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            longest = (longest + m - 1) // m * m
        ids = torch.full((len(rows), longest), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), longest), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            ids[i, :n] = torch.tensor(row["input_ids"])
            labels[i, :n] = torch.tensor(row["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class PaddingFreeCollator:
    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        ids, labels, positions = [], [], []
        for row in rows:
            for segment in row.get("segments") or [len(row["input_ids"])]:
                positions.extend(range(segment))
            ids.extend(row["input_ids"])
            labels.extend(row["labels"])
        labels_t = torch.tensor([labels], dtype=torch.long)
        position_t = torch.tensor([positions], dtype=torch.long)
        labels_t[position_t == 0] = IGNORE  # a sample's first token is never predicted from the previous sample
        return {"input_ids": torch.tensor([ids], dtype=torch.long), "labels": labels_t, "position_ids": position_t}


def pack_rows(rows: Any, max_length: int) -> list[dict[str, Any]]:
    """First-fit-decreasing bin packing of encoded rows into rows of at most max_length tokens.

    `rows` is a list of dicts or a `datasets.Dataset` (read column-wise, once). Each packed row keeps `segments`
    (the sample lengths) so attention stays within each sample."""
    if hasattr(rows, "column_names"):
        ids, labels = rows["input_ids"], rows["labels"]
        sources = rows["source"] if "source" in rows.column_names else ["?"] * len(ids)
    else:
        ids, labels = [r["input_ids"] for r in rows], [r["labels"] for r in rows]
        sources = [r.get("source", "?") for r in rows]
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = len(ids[i])
        for b, free in enumerate(room):
            if n <= free:
                bins[b].append(i)
                room[b] -= n
                break
        else:
            bins.append([i])
            room.append(max_length - n)
    return [{"input_ids": [t for i in members for t in ids[i]],
             "labels": [t for i in members for t in labels[i]],
             "segments": [len(ids[i]) for i in members],
             "source": ", ".join(str(sources[i]) for i in members)} for members in bins]

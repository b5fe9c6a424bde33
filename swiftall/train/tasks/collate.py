"""Batches of task samples. Each row contributes one positive per step (drawn from its positives, seeded)."""
from __future__ import annotations

import random
from typing import Any

from ...models.tasks import pad


class SeqClsCollator:
    """input_ids/attention_mask/labels: the model computes its own loss for --problem_type."""

    def __init__(self, pad_id: int, problem_type: str):
        self.pad_id, self.problem_type = pad_id, problem_type

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        batch = pad([r["ids"] for r in rows], self.pad_id)
        if self.problem_type == "single_label_classification":
            batch["labels"] = torch.tensor([r["label"] for r in rows], dtype=torch.long)
        else:
            batch["labels"] = torch.tensor([r["label"] for r in rows], dtype=torch.float)
        return batch


class EmbeddingCollator:
    """anchors (one per row), docs (each row's drawn positive, then its negatives), doc_row (the row a doc belongs
    to), is_pos and target (the positive's similarity: its row's label, else 1; negatives 0). Media items are
    encoded here by `media` (a MediaEncoder: pixel values and grid sizes join the padded ids)."""

    def __init__(self, pad_id: int, seed: int = 42, media: Any = None):
        self.pad_id, self.rng, self.media = pad_id, random.Random(seed), media

    def _pad(self, items: list) -> dict[str, Any]:
        return pad(self.media.rows(items) if self.media is not None else items, self.pad_id)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        docs, doc_row, is_pos, target = [], [], [], []
        for i, r in enumerate(rows):
            label = 1.0 if r.get("label") is None else r["label"]
            for doc, pos in [(self.rng.choice(r["positives"]), True), *[(n, False) for n in r["negatives"]]]:
                docs.append(doc)
                doc_row.append(i)
                is_pos.append(pos)
                target.append(label if pos else 0.0)
        return {"anchor": self._pad([r["anchor"] for r in rows]), "docs": self._pad(docs),
                "doc_row": torch.tensor(doc_row), "is_pos": torch.tensor(is_pos),
                "target": torch.tensor(target, dtype=torch.float)}


class RerankerCollator:
    """(query, document) pair texts, labels 1/0, and group (one group = a drawn positive and its row's negatives,
    positive first) for the listwise loss."""

    def __init__(self, pad_id: int, seed: int = 42):
        self.pad_id, self.rng = pad_id, random.Random(seed)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        pairs, labels, group = [], [], []
        for i, r in enumerate(rows):
            for ids, label in [(self.rng.choice(r["positives"]), 1.0), *[(n, 0.0) for n in r["negatives"]]]:
                pairs.append(ids)
                labels.append(label)
                group.append(i)
        batch = pad(pairs, self.pad_id)
        batch["pair_labels"] = torch.tensor(labels)
        batch["group"] = torch.tensor(group)
        return batch


def task_collator(spec: Any, pad_id: int, seed: int, media: Any = None) -> Any:
    if spec.task_type == "seq_cls":
        return SeqClsCollator(pad_id, spec.problem_type)
    if spec.task_type == "embedding":
        return EmbeddingCollator(pad_id, seed, media)
    return RerankerCollator(pad_id, seed)

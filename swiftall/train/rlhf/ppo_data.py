"""PPO's data path: prompt rows in blocks (one rollout each), and rollouts turned into tensors for the updates.

The Trainer's dataloader yields one process's whole rollout batch (--per_device_train_batch_size x
--gradient_accumulation_steps prompt rows) at each micro-step; the sampler yields each block of rows
(that batch on every process) once per micro-step of its --num_ppo_epochs optimizer steps, so every micro-step of
those steps sees the same rows and the trainer rolls them out once (as TRL's GRPO with num_iterations).
"""
from __future__ import annotations

import math
from typing import Any, Iterator

import torch
from torch.utils.data import Sampler

from ...templates import IGNORE


class RolloutSampler(Sampler[int]):
    """A seeded permutation of the rows per epoch, cut into blocks of `block` rows, each yielded `repeats` times in a
    row. The last block is filled from the start of the permutation, so every rollout has a full batch and every row
    is rolled out at least once an epoch (TRL's RepeatSampler drops the incomplete block, and with fewer rows than one
    batch, everything). The order depends only on the seed and the epoch, so a resumed run skips to the same rows."""

    def __init__(self, num_rows: int, block: int, repeats: int, seed: int):
        self.num_rows, self.block, self.repeats, self.seed = num_rows, block, repeats, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def blocks(self) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.num_rows, generator=generator).tolist()
        count = math.ceil(self.num_rows / self.block)
        padded = (order * math.ceil(count * self.block / self.num_rows))[:count * self.block]
        return [padded[i * self.block:(i + 1) * self.block] for i in range(count)]

    def __iter__(self) -> Iterator[int]:
        for block in self.blocks():
            for _ in range(self.repeats):
                yield from block

    def __len__(self) -> int:
        return math.ceil(self.num_rows / self.block) * self.block * self.repeats


def keep_rows(rows: list[dict]) -> list[dict]:
    """The collator: a batch stays the list of its prompt rows (the rollout encodes them)."""
    return rows


def encode_rollout(template: Any, pad_id: int, rows: list[dict], texts: list[str], device: Any) -> dict:
    """Prompt + completion through swiftall's Template, right-padded; `positions` are the response tokens' positions
    in the next-token frame (logits at t predict token t + 1), `mask` marks the real ones."""
    seqs, spans = [], []
    for row, text in zip(rows, texts):
        enc = template.encode(row["prompt"] + [{"role": "assistant", "content": text}])
        labels = enc.labels
        end = len(labels)
        while end > 0 and labels[end - 1] == IGNORE:
            end -= 1
        start = end
        while start > 0 and labels[start - 1] != IGNORE:
            start -= 1
        seqs.append(enc.input_ids[:end])
        spans.append((start - 1, end - 1))
    longest = max(len(s) for s in seqs)
    width = max(b - a for a, b in spans)
    ids = torch.full((len(seqs), longest), pad_id, dtype=torch.long)
    attn = torch.zeros_like(ids)
    positions = torch.zeros((len(seqs), width), dtype=torch.long)
    mask = torch.zeros((len(seqs), width))
    for i, (seq, (a, b)) in enumerate(zip(seqs, spans)):
        ids[i, :len(seq)] = torch.tensor(seq)
        attn[i, :len(seq)] = 1
        positions[i, :b - a] = torch.arange(a, b)
        mask[i, :b - a] = 1
    out = {"input_ids": ids, "attention_mask": attn, "positions": positions, "mask": mask}
    return {k: v.to(device) for k, v in out.items()}


ROW_KEYS = ("input_ids", "attention_mask", "positions", "mask", "old_logp", "old_values", "advantages", "returns")


def split_rollout(batch: dict, parts: int) -> list[dict]:
    """The rollout in `parts` micro-batches of consecutive rows, each cut to its own longest row (right padding
    changes no causal LM output), each carrying `num_tokens`: the response tokens of the whole rollout."""
    num_tokens = batch["mask"].sum().clamp(min=1)
    pieces = []
    for chunk in torch.arange(batch["mask"].shape[0]).tensor_split(parts):  # rows >= parts: none is empty
        piece = {k: batch[k][chunk[0]:chunk[-1] + 1] for k in ROW_KEYS}
        length = int(piece["attention_mask"].sum(dim=1).max())
        width = max(int(piece["mask"].sum(dim=1).max()), 1)
        piece["input_ids"], piece["attention_mask"] = piece["input_ids"][:, :length], piece["attention_mask"][:, :length]
        for k in ROW_KEYS[2:]:
            piece[k] = piece[k][:, :width]
        pieces.append({**piece, "num_tokens": num_tokens})
    return pieces

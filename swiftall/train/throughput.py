"""The one throughput logger: tokens per second, trained tokens per second and memory in the logs of any
transformers or TRL trainer (sft's SwiftTrainer and every alignment trainer mix it in)."""
from __future__ import annotations

import time
from typing import Any, Optional

from ..templates import IGNORE
from .callbacks import memory_gib

# Mask pairs that say which positions are real tokens, in the batches of the trainers swiftall runs:
# sft/kto/cpo/orpo/rm (attention_mask), GRPO/GKD (prompt + completion masks), paired preference batches.
TOKEN_MASKS = (("attention_mask",), ("prompt_mask", "completion_mask"),
               ("chosen_attention_mask", "rejected_attention_mask"))


def count_tokens(inputs: dict) -> tuple[int, int]:
    """(real tokens, trained tokens) of a batch: pad excluded; trained are labelled positions (or completions)."""
    tokens = 0
    for keys in TOKEN_MASKS:
        if all(k in inputs for k in keys):
            tokens = int(sum(inputs[k].sum() for k in keys))
            break
    else:
        if "input_ids" in inputs and hasattr(inputs["input_ids"], "numel"):
            tokens = inputs["input_ids"].numel()  # padding-free rows: no mask, no pad
    if "labels" in inputs and hasattr(inputs["labels"], "ne"):
        trained = int(inputs["labels"].ne(IGNORE).sum())
    elif "completion_mask" in inputs:
        trained = int(inputs["completion_mask"].sum())
    else:
        trained = 0
    return tokens, trained


class ThroughputMixin:
    """Counts each training batch's tokens in compute_loss and adds tokens_per_second, trained_tokens_per_second
    (when the batch says what is trained) and memory to every log that carries a loss.

    `total_tokens`/`total_trained_tokens` add up the whole run (sft's summary reports them)."""

    total_tokens = 0
    total_trained_tokens = 0
    _window_tokens = 0
    _window_trained = 0
    _window_start: Optional[float] = None

    def count_batch(self, inputs: Any) -> None:
        if not isinstance(inputs, dict):
            return
        tokens, trained = count_tokens(inputs)
        if self._window_start is None:
            self._window_start = time.time()
        self._window_tokens += tokens
        self._window_trained += trained
        self.total_tokens += tokens
        self.total_trained_tokens += trained

    def compute_loss(self, model, inputs, *args: Any, **kwargs: Any):
        if model.training:
            self.count_batch(inputs)
        return super().compute_loss(model, inputs, *args, **kwargs)

    def log(self, logs: dict[str, float], start_time: Optional[float] = None) -> None:
        if "loss" in logs:
            elapsed = max(time.time() - (self._window_start or time.time()), 1e-9)
            if self._window_tokens:
                logs["tokens_per_second"] = round(self._window_tokens / elapsed, 2)
            if self._window_trained:
                logs["trained_tokens_per_second"] = round(self._window_trained / elapsed, 2)
            logs.update(memory_gib())
            self._window_tokens = self._window_trained = 0
            self._window_start = time.time()
        super().log(logs, start_time)


def with_throughput(trainer_cls: type) -> type:
    """A subclass of a transformers/TRL trainer that also logs throughput and memory, and writes each checkpoint
    whole or not at all (AtomicCheckpoints)."""
    from .checkpoints import AtomicCheckpoints

    return type(f"Swift{trainer_cls.__name__}", (AtomicCheckpoints, ThroughputMixin, trainer_cls), {})

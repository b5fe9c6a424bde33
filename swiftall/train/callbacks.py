"""Callbacks: logging.jsonl with throughput and memory, plots at the end."""
from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


def peak_rss_kib() -> int:
    """This process's own peak resident memory. Linux's VmHWM where there is one: ru_maxrss starts at the peak of the
    process that started this one (exec keeps it), so a run launched from a large parent (pytest, the web UI) would
    report the parent's peak."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux; macOS reports bytes but has no /proc


def memory_gib() -> dict[str, float]:
    import torch

    out = {"memory_peak_rss_gib": round(peak_rss_kib() / 2**20, 3)}
    if torch.cuda.is_available():
        out["memory_cuda_peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    return out


class JsonlLogger(TrainerCallback):
    """Appends every log event to DIR/logging.jsonl (one JSON object a line). At the start of training the log keeps
    only the records up to the step training starts from: a resumed run continues its log without the steps it
    redoes, and a run started over in the same folder starts a new log."""

    def __init__(self, output_dir: Path):
        self.path = Path(output_dir) / "logging.jsonl"
        self.start = time.time()

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or not self.path.is_file():
            return
        kept = [r for r in read_log(self.path.parent) if r.get("step", 0) <= state.global_step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), **logs,
                  "elapsed_s": round(time.time() - self.start, 2)}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


class TimeToFirstStep(TrainerCallback):
    def __init__(self, started: float):
        self.started = started
        self.first_step_s: float | None = None

    def on_step_end(self, args, state, control, **kwargs):
        if self.first_step_s is None:
            self.first_step_s = time.time() - self.started


def read_log(output_dir: Path) -> list[dict[str, Any]]:
    path = Path(output_dir) / "logging.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:  # a line cut short by a killed run, or a blank one
            continue
    return records

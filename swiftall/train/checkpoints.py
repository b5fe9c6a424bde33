"""Checkpoints that are complete or absent: written into a staging folder, renamed to checkpoint-N when whole.

transformers writes checkpoint-N file by file (weights, optimizer, scheduler, RNG state, trainer_state.json last); a
run killed in between left a checkpoint-N that resume picked and died on. Here the Trainer writes into
`.saving-checkpoint-N/checkpoint-N`, and only the finished folder is renamed to `checkpoint-N` (one rename(2), atomic on
one filesystem), so a checkpoint-N folder is always whole. A leftover staging folder is an interrupted save: resume
ignores it (and says so) and the next save of that step replaces it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Optional

CKPT = re.compile(r"^checkpoint-(\d+)$")
STAGING = ".saving-"  # + checkpoint-N
WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "model.safetensors.index.json",
           "pytorch_model.bin", "pytorch_model.bin.index.json", "value_head.pt")


class AtomicCheckpoints:
    """Mix into a transformers/TRL Trainer, first in the bases, so the staging folder is in place for the whole of
    every `_save_checkpoint` (TRL's own overrides add files to the checkpoint after transformers' part)."""

    _staging: Optional[str] = None

    def _get_output_dir(self, trial: Any) -> str:
        return self._staging if self._staging is not None else super()._get_output_dir(trial)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        run_dir = Path(super()._get_output_dir(trial))
        name = f"checkpoint-{self.state.global_step}"
        staging = run_dir / f"{STAGING}{name}"
        if self.args.should_save and staging.exists():
            shutil.rmtree(staging)  # an earlier interrupted save of this step
        self._staging = str(staging)
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging = None
        if self.args.world_size > 1:
            self.accelerator.wait_for_everyone()  # every process has written its part before the rename
        if self.args.should_save:
            publish(staging / name, run_dir / name)
            staging.rmdir()
            self._after_publish(run_dir, staging / name, run_dir / name)

    def _after_publish(self, run_dir: Path, staged: Path, final: Path) -> None:
        """The best checkpoint's path points at the published folder; older checkpoints rotate as transformers
        would have (its own rotation ran inside the staging folder, where there was nothing to rotate)."""
        from transformers.trainer_utils import rotate_checkpoints

        if self.state.best_model_checkpoint and Path(self.state.best_model_checkpoint) == staged:
            self.state.best_model_checkpoint = str(final)
        rotate_checkpoints(output_dir=str(run_dir), save_total_limit=self.args.save_total_limit,
                           best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)


def publish(staged: Path, final: Path) -> None:
    """Rename a finished checkpoint folder to its final name (replacing an older folder of that name)."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(staged, final)


def incomplete_reason(folder: Path) -> Optional[str]:
    """Why a checkpoint-N folder cannot be resumed from, or None when it can."""
    state = folder / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json"
    try:
        json.loads(state.read_text())
    except (OSError, ValueError):
        return "a truncated trainer_state.json"
    if not any((folder / name).is_file() for name in WEIGHTS) and not list(folder.glob("*.safetensors")):
        return "no model weights"
    return None


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """The checkpoint-N folders of a run, newest step first."""
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := CKPT.match(p.name))]
    return sorted(found, reverse=True)


def interrupted_saves(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob(f"{STAGING}checkpoint-*") if p.is_dir())

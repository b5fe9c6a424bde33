"""The stall watchdog (--stall_timeout S): a thread in every process of a run that, when no training step has
completed for S seconds, writes that process's Python stacks (every thread, faulthandler) to
RUN/stall-rank<N>.txt and logs a message naming the rank and where its main thread is.

A rank that hangs (a dead data loader, a slow filesystem, a stuck kernel) leaves the others waiting in a collective
until --ddp_timeout ends the job with no clue which rank it was: since every rank stops completing steps, every rank
writes its stacks, and the one whose main thread is not inside a collective is the straggler. The run itself goes
on; the watchdog reports once per stall, and again after the next completed step."""
from __future__ import annotations

import faulthandler
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Optional

from transformers import TrainerCallback

from ..utils.env import launched_world
from ..utils.log import get_logger

logger = get_logger(__name__)


def stall_seconds(cfg: Any) -> Optional[float]:
    """--stall_timeout; unset: half of --ddp_timeout in a multi-process run, off in one process; 0: off."""
    value = getattr(cfg, "stall_timeout", None)
    if value is None:
        world = launched_world()
        return getattr(cfg, "ddp_timeout", 1800) / 2 if world and world[1] > 1 else None
    return float(value) or None


def stall_callbacks(cfg: Any, output_dir: Path) -> list:
    seconds = stall_seconds(cfg)
    return [StallWatchdog(seconds, Path(output_dir))] if seconds else []


class StallWatchdog(TrainerCallback):
    def __init__(self, seconds: float, folder: Path):
        self.seconds, self.folder = seconds, folder
        self.rank, self.world = launched_world() or (0, 1)
        self.last, self.step, self.fired = time.monotonic(), 0, False
        self.stop = threading.Event()
        self.thread: Optional[threading.Thread] = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.progress(state.global_step)
        self.stop.clear()
        self.thread = threading.Thread(target=self._watch, name="swiftall-stall-watchdog", daemon=True)
        self.thread.start()

    def on_step_end(self, args, state, control, **kwargs):
        self.progress(state.global_step)

    def on_prediction_step(self, args, state, control, **kwargs):  # evaluation batches are progress too
        self.progress(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        self.stop.set()

    def progress(self, step: int) -> None:
        self.last, self.step, self.fired = time.monotonic(), step, False

    def _watch(self) -> None:
        main = threading.main_thread()
        while not self.stop.wait(min(1.0, self.seconds / 4)) and main.is_alive():
            idle = time.monotonic() - self.last
            if idle >= self.seconds and not self.fired:
                self.fired = True
                self.report(idle, main)

    def report(self, idle: float, main: threading.Thread) -> Path:
        path = self.folder / f"stall-rank{self.rank}.txt"
        where = main_thread_place(main)
        text = (f"rank {self.rank} of {self.world}: no training step completed for {idle:.0f} s (--stall_timeout "
                f"{self.seconds:g}; last step {self.step}); main thread in {where}")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with path.open("w") as f:
                f.write(text + "\n\n")
                f.flush()  # faulthandler writes to the file descriptor itself
                faulthandler.dump_traceback(file=f, all_threads=True)
        except OSError as exc:
            logger.warning(f"{text}; could not write its stacks to {path}: {exc.strerror}")
            return path
        logger.warning(f"{text}; Python stacks of its threads in {path} (every stalled rank writes its own "
                       "stall-rank<N>.txt: the rank not waiting in a collective is the one holding the others up)")
        return path


def main_thread_place(main: threading.Thread) -> str:
    frame = sys._current_frames().get(main.ident or -1)
    if frame is None:
        return "an unknown place"
    last = traceback.extract_stack(frame)[-1]
    return f"{last.name} ({last.filename}:{last.lineno})"

"""One background thread for the PyTorch engine's `model.generate` requests (multimodal inputs), run one at a time.

A request is a job (a function) plus its scheduler Sequences. Ending a Sequence early is the job's business (it stops
`generate` through `CancelledRows`); `close(cancel=True)` marks every queued and running Sequence cancelled, ends
the queued ones without running them, and joins the thread, so no generate call outlives the engine.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Optional

from .shutdown import IDLE_EXIT_S, stop_at_exit


class GenerateWorker:
    def __init__(self, name: str = "swiftall-generate"):
        self.name = name
        self.jobs: "queue.Queue[Optional[tuple[Callable[[], None], list]]]" = queue.Queue()
        self.running: list = []           # the Sequences of the job in progress
        self.thread: Optional[threading.Thread] = None
        self.guard = threading.Lock()
        self.closed = False
        self.cancelling = False

    def submit(self, job: Callable[[], None], seqs: list) -> None:
        from .engine import ShuttingDownError

        with self.guard:
            if self.closed:
                raise ShuttingDownError("the engine is shutting down; not accepting new requests")
            self.jobs.put((job, seqs))
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self.thread.start()
                stop_at_exit(self)

    def close(self, timeout: Optional[float] = None, cancel: bool = False) -> None:
        with self.guard:
            self.closed = True
            self.cancelling = self.cancelling or cancel
            thread = self.thread
            if cancel:
                for seq in self.running:
                    seq.cancelled = True
                self._cancel_queued()
            self.jobs.put(None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _cancel_queued(self) -> None:
        while True:
            try:
                item = self.jobs.get_nowait()
            except queue.Empty:
                return
            for seq in item[1] if item else []:
                if seq.finish_reason is None:
                    seq.cancelled, seq.finish_reason = True, "cancelled"
                    seq.on_finish(seq, None)

    def _loop(self) -> None:
        while True:
            try:
                item = self.jobs.get(timeout=IDLE_EXIT_S)
            except queue.Empty:
                with self.guard:  # idle: end the thread (the next submit starts one); a job queued meanwhile stays
                    if self.jobs.empty():
                        self.thread = None
                        return
                continue
            if item is None:
                return
            job, seqs = item
            with self.guard:  # a close(cancel=True) from now on reaches this job through `running`
                self.running = seqs
                for seq in seqs:
                    seq.cancelled = seq.cancelled or self.cancelling
            try:
                if not all(s.cancelled for s in seqs):
                    job()
                    continue
                for seq in seqs:
                    seq.finish_reason = "cancelled"
                    seq.on_finish(seq, None)
            finally:
                with self.guard:
                    self.running = []


def cancelled_rows(seqs: list) -> Any:
    """A transformers StoppingCriteria: row i of the generate batch stops once `seqs[i]` is cancelled."""
    import torch
    from transformers import StoppingCriteria

    class CancelledRows(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.tensor([s.cancelled for s in seqs], dtype=torch.bool, device=input_ids.device)

    return CancelledRows()

"""Work that the scheduler's thread runs between its batch steps: embeddings, and `model.generate` for requests whose
model inputs the batch cannot take (their tokens reach their answers step by step through `token_feed`).

The scheduler's thread is the model's only user: peft selects each row's LoRA adapter with hooks it installs on
shared modules for the length of one forward, so two forwards at once (a batch step and an embedding, say) from two
threads would each see the other's hooks. A `Job` is a function plus the Sequences it answers (none for an
embedding); the caller waits on its `future`. Ending a job's Sequences early is the job's business (`generate` stops
through `cancelled_rows`); a job whose Sequences are all cancelled before it starts is not run.
"""
from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Job:
    run: Callable[[], Any]
    seqs: list = field(default_factory=list)
    future: Future = field(default_factory=Future)


def run_job(job: Job) -> None:
    """Run one job on the scheduler's thread; its result or error goes to its future."""
    import torch

    if not job.future.set_running_or_notify_cancel():
        return
    if job.seqs and all(s.cancelled for s in job.seqs):
        finish_cancelled(job)
        return
    try:
        with torch.inference_mode():
            job.future.set_result(job.run())
    except BaseException as exc:  # noqa: BLE001 - the caller waiting on the future gets it
        job.future.set_exception(exc)


def finish_cancelled(job: Job, error: BaseException | None = None) -> None:
    """End a job that will not run: its Sequences finish as "cancelled", its future gets `error` (or None)."""
    for seq in job.seqs:
        if seq.finish_reason is None:
            seq.cancelled, seq.finish_reason = True, "cancelled"
            try:
                seq.on_finish(seq, None)
            except Exception:  # noqa: BLE001 - a caller gone with its event loop; the others still end
                pass
    if not job.future.done():
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(None)


def cancelled_rows(seqs: list) -> Any:
    """A transformers StoppingCriteria: row i of the generate batch stops once `seqs[i]` is cancelled or ended (a
    stop string seen by `token_feed`)."""
    import torch
    from transformers import StoppingCriteria

    class CancelledRows(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            done = [s.cancelled or s.finish_reason is not None for s in seqs]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return CancelledRows()


def token_feed(seqs: list, between: Callable[[], None] | None = None) -> Any:
    """A transformers streamer for `generate`: each step's new token of row i goes to `seqs[i]` at once (streamed
    answers show text as it is generated, not after `generate` returns); a row ends at its eos or stop string
    (its `finish_reason` set and `on_finish` called then). The first `put` is the prompt. `between()`, when given,
    runs after each `put`, between two of generate's forwards (the scheduler's other rows take a step there)."""
    from transformers.generation.streamers import BaseStreamer

    class TokenFeed(BaseStreamer):
        def __init__(self) -> None:
            self.prompt_seen = False

        def put(self, value: Any) -> None:
            if not self.prompt_seen:
                self.prompt_seen = True
                return
            for seq, token in zip(seqs, value.reshape(len(seqs), -1)[:, -1].tolist()):
                if seq.finish_reason is None:
                    self._take(seq, token)
            if between is not None:
                between()

        def _take(self, seq: Any, token: int) -> None:
            seq.generated.append(token)
            stop = seq.on_token(seq, token, None, [])
            if token in seq.eos_ids or stop:
                seq.finish_reason = "stop"
                seq.on_finish(seq, None)

        def end(self) -> None:
            pass

    return TokenFeed()

"""Continuous batching for the PyTorch engine: one background thread drives the model's forward with a KV cache.

Every loop turn: waiting sequences join (their prompts are prefilled together, left-padded, and their KV cache is
concatenated to the running batch's), then one decode step runs for every sequence in the batch, and finished
sequences leave (their cache rows are dropped, and columns that only padding uses are trimmed). A request never
waits for a whole batch to finish, and the batch is as wide as the traffic allows, up to `max_batch_size`.
A prompt prefix shared by the prompts (a system prompt, an evaluation's instruction) is computed once and kept
(prefix_cache.py); under a backlog, free rows are refilled in groups rather than one at a time (`_joining`).

Each row carries its own sampling settings (see sampling.py) and its own LoRA adapter: peft's `adapter_names`
runs a mixed-adapter batch in one forward. A multimodal row is prefilled alone with its media inputs, then decodes
with the others; its position shift (M-RoPE) is kept on its Sequence (media_prefill.py).

This thread is the model's only user. Other work on the model (embeddings, `generate` for inputs the batch cannot
take) is queued here as a `Job` (worker.py) and runs between two batch steps, never beside one (a `generate` job
lets the batch take a step at each of its tokens: `step_between`): peft's per-row
adapter selection installs hooks on shared modules for the length of a forward, so concurrent forwards from
several threads would mix their adapters.

Why not transformers' `ContinuousBatchingManager`? It runs on this CPU, but its sampling settings are per
manager (not per request), it has no per-request seed, no top-k alternatives for `top_logprobs`, and no
per-row LoRA adapters -- all of which an OpenAI-compatible server must honour.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..utils.log import get_logger
from .engine import QueueFullError, ShuttingDownError
from .sampling import SamplingParams, choose_tokens
from .shutdown import IDLE_EXIT_S, stop_at_exit
from .kv_cache import cache_name, keep_rows, new_cache, splice_rows
from .prefix_cache import PrefixCache
from .worker import Job, finish_cancelled, run_job

logger = get_logger(__name__)

ARRIVAL_GAP_S = 0.002   # see Scheduler._gather_arrivals
ARRIVAL_WAIT_S = 0.05


@dataclass
class Sequence:
    """One answer being generated. `on_token(seq, token, logprob, top)` returns True to stop the sequence
    (a stop string was seen); `on_finish(seq, error)` is called exactly once."""

    prompt: list[int]
    params: SamplingParams
    max_new_tokens: int
    eos_ids: set[int]
    on_token: Callable[["Sequence", int, Optional[float], list], bool]
    on_finish: Callable[["Sequence", Optional[BaseException]], None]
    adapter: Optional[str] = None
    generated: list[int] = field(default_factory=list)
    finish_reason: Optional[str] = None
    cancelled: bool = False
    pending: int = -1          # sampled token whose KV is not in the cache yet
    pos: int = 0               # position id of `pending`
    media: Optional[dict] = None  # model inputs besides the ids (pixel values, grids...): its prefill's own


class Scheduler:
    def __init__(self, model: Any, max_batch_size: int = 16, max_queue: int = 256, use_adapter_names: bool = False,
                 prefix_caching: bool = True):
        self.model = model
        self.max_batch_size = max(1, max_batch_size)
        self.max_queue = max_queue
        self.use_adapter_names = use_adapter_names
        self.waiting: deque[Sequence] = deque()
        self.jobs: deque[Job] = deque()
        self.job_seqs: list[Sequence] = []   # the Sequences of the job running now
        self.rows: list[Sequence] = []
        self.cache: Any = None
        self.mask: Any = None
        self.cv = threading.Condition()
        self.accepting = True
        self.stopping = False
        self.cancelling = False    # close(cancel=True): drop every sequence without another forward
        self.thread: Optional[threading.Thread] = None
        self.steps = 0             # decode steps run (tests and benchmarks read it)
        self.rope_holders: Optional[list] = None   # modules keeping M-RoPE deltas (media_prefill.py)
        self.widest = 0            # widest batch seen
        self.prefix = PrefixCache() if prefix_caching else None   # shared prompt prefixes computed once
        self.refill_group = max(1, self.max_batch_size // 4)   # see _joining
        self.refill_wait = 8
        self.deferred = 0

    # ---- public -------------------------------------------------------------------------------
    def submit(self, seqs: list[Sequence]) -> None:
        with self.cv:
            self._admit(len(seqs))
            self.waiting.extend(seqs)
            self._wake()

    def call(self, run: Any, seqs: Optional[list[Sequence]] = None) -> Any:
        """Queue `run()` for this thread (between two batch steps); returns its Future. `seqs` are the Sequences it
        answers: cancelling them all before it starts skips it, and close(cancel=True) cancels them."""
        job = Job(run, list(seqs or []))
        with self.cv:
            self._admit(len(job.seqs))
            self.jobs.append(job)
            self._wake()
        return job.future

    def run(self, run: Any) -> Any:
        """`run()` on this thread, waiting for its result (inline when already on it)."""
        if threading.current_thread() is self.thread:
            return run()
        return self.call(run).result()

    def busy(self) -> int:
        """Sequences and jobs not finished yet (waiting, in the batch, or in a job)."""
        with self.cv:
            return len(self.waiting) + len(self.rows) + len(self.jobs) + len(self.job_seqs)

    def _admit(self, count: int) -> None:
        if not self.accepting:
            raise ShuttingDownError("the server is shutting down; not accepting new requests")
        queued = len(self.waiting) + sum(max(1, len(j.seqs)) for j in self.jobs)
        if queued + count > self.max_queue:
            raise QueueFullError(f"too many requests waiting ({queued} queued, limit {self.max_queue}); retry shortly")

    def _wake(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._loop, name="swiftall-scheduler", daemon=True)
            self.thread.start()
            stop_at_exit(self)
        self.cv.notify()

    def close(self, timeout: Optional[float] = None, cancel: bool = False) -> None:
        """Stop accepting, let queued and running sequences finish (or, with `cancel`, end them as "cancelled"
        after the forward in progress), then stop the thread and wait for it."""
        with self.cv:
            self.accepting = False
            self.stopping = True
            self.cancelling = self.cancelling or cancel
            for seq in self.job_seqs if cancel else []:
                seq.cancelled = True  # the job running now (a generate) stops at its next token
            thread = self.thread
            self.cv.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # ---- the loop -----------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self.cv:
                while not (self.waiting or self.rows or self.jobs or self.stopping):
                    if not self.cv.wait(IDLE_EXIT_S) and not (self.waiting or self.rows or self.jobs or self.stopping):
                        self.thread = None  # idle: end the thread (the next submit starts one), so a dropped
                        return              # engine without close() does not keep a thread and its model alive
                if self.cancelling:
                    self._cancel_all()
                if self.stopping and not (self.waiting or self.rows or self.jobs):
                    self.thread = None
                    return
                if self.waiting and not (self.rows or self.jobs or self.stopping):
                    self._gather_arrivals()
                job = self.jobs.popleft() if self.jobs else None
                self.job_seqs = job.seqs if job else []
                joining = self._joining()
            if job is not None:
                run_job(job)
                with self.cv:
                    self.job_seqs = []
            self._turn(joining)

    def _gather_arrivals(self) -> None:
        """An idle batch is about to start (called holding the lock). Requests sent together (an evaluation, a
        burst) arrive one by one, each encoded by its caller: wait while they keep coming (ARRIVAL_WAIT_S at most,
        ARRIVAL_GAP_S after the last), so they prefill as one batch, not the first alone and the rest a forward later."""
        deadline = time.monotonic() + ARRIVAL_WAIT_S
        seen = len(self.waiting)
        while seen < self.max_batch_size and not (self.stopping or self.jobs):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.cv.wait(min(ARRIVAL_GAP_S, left))
            if len(self.waiting) == seen:
                return
            seen = len(self.waiting)

    def step_between(self) -> None:
        """One batch turn (new sequences join, one decode step) run from inside a job, between two of its own
        forwards: a `generate` for a family that cannot join the batch calls it at each of its tokens, so text
        requests keep moving while it runs. Never another job (they would nest)."""
        if threading.current_thread() is not self.thread:
            return
        with self.cv:
            if self.cancelling:
                return  # the loop ends everything once the job returns
            joining = self._joining()
        if joining or self.rows:
            self._turn(joining)

    def _joining(self) -> list[Sequence]:
        """The waiting sequences that join the batch this turn (called holding the lock). Under a backlog (more
        waiting than free rows: an evaluation, a saturated server) rows are refilled in groups of at least
        `refill_group` rather than one or two at a time as answers finish -- each refill is a forward of its own,
        about as long as a decode step on a CPU -- but never held back more than `refill_wait` turns."""
        room = self.max_batch_size - len(self.rows)
        backlog = len(self.waiting) > room
        if backlog and self.rows and room < self.refill_group and self.deferred < self.refill_wait:
            self.deferred += 1
            return []
        self.deferred = 0
        return [self.waiting.popleft() for _ in range(min(room, len(self.waiting)))]

    def _turn(self, joining: list[Sequence]) -> None:
        import torch

        try:
            with torch.inference_mode():
                joining = [s for s in joining if not self._drop_cancelled(s)]
                text = [s for s in joining if s.media is None]
                if text:
                    self._prefill(text)
                for seq in joining:
                    if seq.media is not None:
                        self._prefill_media(seq)
                if self.rows:
                    self._decode()
        except Exception as exc:  # a failing forward fails the sequences in it, not the server
            logger.error(f"generation failed: {exc}")
            for seq in self.rows + joining:
                if seq.finish_reason is None:
                    seq.finish_reason = "error"
                    seq.on_finish(seq, exc)
            self.rows, self.cache, self.mask = [], None, None
            self._forget_prefix()

    def _forget_prefix(self) -> None:
        """The batch is empty: drop the kept prefix. Its keys/values are only valid for the weights they were computed
        with, and between two batches the weights may change (a training step before the next rollout or the next
        evaluation during training); this runs before the last answers are handed back, so before any such step."""
        if self.prefix is not None:
            self.prefix.clear()

    def _cancel_all(self) -> None:
        """End every waiting and running sequence as "cancelled" (their callers get what was generated so far)."""
        seqs = list(self.waiting) + self.rows
        jobs = list(self.jobs)
        self.waiting.clear()
        self.jobs.clear()
        for job in jobs:
            finish_cancelled(job, None if job.seqs else ShuttingDownError("the engine closed before this request ran"))
        self.rows, self.cache, self.mask = [], None, None
        self._forget_prefix()
        for seq in seqs:
            if seq.finish_reason is None:
                seq.cancelled, seq.finish_reason = True, "cancelled"
                try:
                    seq.on_finish(seq, None)
                except Exception:  # noqa: BLE001 - a caller gone with its event loop; the others still end
                    pass

    def _drop_cancelled(self, seq: Sequence) -> bool:
        if seq.cancelled:
            seq.finish_reason = "cancelled"
            seq.on_finish(seq, None)
        return seq.cancelled

    def _forward(self, ids: Any, mask: Any, positions: Any, cache: Any, adapters: list[Optional[str]],
                 **media: Any) -> Any:
        kwargs = {"adapter_names": [a or "__base__" for a in adapters]} if self.use_adapter_names else {}
        name = cache_name()
        kwargs[name] = cache
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                         logits_to_keep=1, **kwargs, **media)
        return out.logits[:, -1, :], getattr(out, name)

    def _prefill(self, seqs: list[Sequence]) -> None:
        """Text prompts together, left-padded; a prefix they share with each other or with the kept prefix
        (prefix_cache.py) is not computed again: only what follows it is, on top of a copy of its keys/values."""
        import torch

        device = self._device()
        adapters = [s.adapter for s in seqs]
        shared = None
        if self.prefix is not None and len(set(adapters)) == 1:
            shared = self.prefix.shared([s.prompt for s in seqs], adapters[0],
                                        lambda ids: self._prefix(ids, adapters[0]))
        start = shared[0] if shared else 0
        width = max(len(s.prompt) - start for s in seqs)
        ids = torch.zeros((len(seqs), width), dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, width - len(s.prompt) + start:] = torch.tensor(s.prompt[start:])
            mask[i, width - len(s.prompt) + start:] = 1
        positions = start + (mask.cumsum(-1) - 1).clamp(min=0)
        cache = new_cache()
        if shared:
            for layer, (keys, values) in enumerate(shared[1]):
                cache.update(keys.expand(len(seqs), -1, -1, -1), values.expand(len(seqs), -1, -1, -1), layer)
            mask = torch.cat([torch.ones((len(seqs), start), dtype=torch.long), mask], dim=1)
        ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
        logits, cache = self._forward(ids, mask, positions, cache, adapters)
        self._join(seqs, logits, cache, mask, [0] * len(seqs))

    def _prefix(self, ids: list[int], adapter: Optional[str]) -> Any:
        """A shared prompt prefix run alone; its cache."""
        import torch

        tensor = torch.tensor([ids], dtype=torch.long, device=self._device())
        positions = torch.arange(len(ids), device=tensor.device).unsqueeze(0)
        return self._forward(tensor, torch.ones_like(tensor), positions, new_cache(), [adapter])[1]

    def _prefill_media(self, seq: Sequence) -> None:
        """One multimodal prompt, alone, through the family's forward with its media inputs; the family computes its
        positions and the scheduler keeps the shift of the positions after the media (media_prefill.py)."""
        import torch

        from .media_prefill import device_inputs, forget_deltas, read_delta, rope_holders

        if self.rope_holders is None:
            self.rope_holders = rope_holders(self.model)
        device = self._device()
        ids = torch.tensor([seq.prompt], dtype=torch.long, device=device)
        mask = torch.ones_like(ids)
        forget_deltas(self.rope_holders)
        try:
            logits, cache = self._forward(ids, mask, None, new_cache(), [seq.adapter],
                                          **device_inputs(seq.media, device))
        except Exception as exc:  # its own media failed (the batch's cache is untouched): only it ends
            logger.error(f"a multimodal prefill failed: {exc}")
            seq.finish_reason = "error"
            seq.on_finish(seq, exc)
            return
        delta = read_delta(self.rope_holders)
        forget_deltas(self.rope_holders)
        seq.media = {}  # its features are in the cache now; the pixels are not needed again
        self._join([seq], logits, cache, mask, [delta])

    def _join(self, seqs: list[Sequence], logits: Any, cache: Any, mask: Any, deltas: list[int]) -> None:
        """Prefilled sequences enter the batch: their cache rows are spliced in and their first token sampled."""
        for s, delta in zip(seqs, deltas):
            s.pos = len(s.prompt) + delta
            s.params.history = list(s.prompt) if s.params.repetition_penalty != 1.0 else []
        self._merge(cache, mask)
        self.rows.extend(seqs)
        self.widest = max(self.widest, len(self.rows))
        self._advance(seqs, logits)

    def _decode(self) -> None:
        import torch

        device = self._device()
        ids = torch.tensor([[s.pending] for s in self.rows], dtype=torch.long, device=device)
        positions = torch.tensor([[s.pos] for s in self.rows], dtype=torch.long, device=device)
        self.mask = torch.cat([self.mask, torch.ones((len(self.rows), 1), dtype=torch.long, device=device)], dim=1)
        logits, self.cache = self._forward(ids, self.mask, positions, self.cache, [s.adapter for s in self.rows])
        for s in self.rows:
            s.pos += 1
        self.steps += 1
        self._advance(list(self.rows), logits)

    def _advance(self, seqs: list[Sequence], logits: Any) -> None:
        """Sample each row's next token, hand it to its sequence, drop the sequences that finished."""
        choices = choose_tokens(logits, [s.params for s in seqs])
        for s, (token, logprob, top) in zip(seqs, choices):
            s.generated.append(token)
            s.pending = token
            if s.params.history:
                s.params.history.append(token)
            stop = s.on_token(s, token, logprob, top)
            if token in s.eos_ids or stop:
                s.finish_reason = "stop"
            elif len(s.generated) >= s.max_new_tokens:
                s.finish_reason = "length"
            elif s.cancelled:
                s.finish_reason = "cancelled"
        finished = [s for s in seqs if s.finish_reason is not None]
        if finished:
            self._evict(finished)
            for s in finished:
                s.on_finish(s, None)

    # ---- KV cache surgery (kv_cache.py) -----------------------------------------------------------
    def _merge(self, cache: Any, mask: Any) -> None:
        if not self.rows:
            self.cache, self.mask = cache, mask
            return
        self.mask = splice_rows(self.cache, self.mask, cache, mask)

    def _evict(self, finished: list[Sequence]) -> None:
        gone = {id(s) for s in finished}
        keep = [i for i, s in enumerate(self.rows) if id(s) not in gone]
        self.rows = [self.rows[i] for i in keep]
        if not keep:
            self.cache, self.mask = None, None
            self._forget_prefix()
            return
        self.mask = keep_rows(self.cache, self.mask, keep)

    def _device(self) -> Any:
        return next(self.model.parameters()).device

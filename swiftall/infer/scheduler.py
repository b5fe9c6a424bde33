"""Continuous batching for the PyTorch engine: one background thread drives the model's forward with a KV cache.

Every loop turn: waiting sequences join (their prompts are prefilled together, left-padded, and their KV cache is
concatenated to the running batch's), then one decode step runs for every sequence in the batch, and finished
sequences leave (their cache rows are dropped, and columns that only padding uses are trimmed). A request never
waits for a whole batch to finish, and the batch is as wide as the traffic allows, up to `max_batch_size`.

Each row carries its own sampling settings (see sampling.py) and its own LoRA adapter: peft's `adapter_names`
runs a mixed-adapter batch in one forward.

This thread is the model's only user. Other work on the model (embeddings, `generate` for inputs the batch cannot
take) is queued here as a `Job` (worker.py) and runs between two batch steps, never beside one: peft's per-row
adapter selection installs hooks on shared modules for the length of a forward, so concurrent forwards from
several threads would mix their adapters.

Why not transformers' `ContinuousBatchingManager`? It runs on this CPU, but its sampling settings are per
manager (not per request), it has no per-request seed, no top-k alternatives for `top_logprobs`, and no
per-row LoRA adapters -- all of which an OpenAI-compatible server must honour.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..utils.log import get_logger
from .engine import QueueFullError, ShuttingDownError
from .sampling import SamplingParams, choose_tokens
from .shutdown import IDLE_EXIT_S, stop_at_exit
from .worker import Job, finish_cancelled, run_job

logger = get_logger(__name__)


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


class Scheduler:
    def __init__(self, model: Any, max_batch_size: int = 16, max_queue: int = 256, use_adapter_names: bool = False):
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
        self.widest = 0            # widest batch seen

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
        import torch

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
                job = self.jobs.popleft() if self.jobs else None
                self.job_seqs = job.seqs if job else []
                room = self.max_batch_size - len(self.rows)
                joining = [self.waiting.popleft() for _ in range(min(room, len(self.waiting)))]
            if job is not None:
                run_job(job)
                with self.cv:
                    self.job_seqs = []
            try:
                with torch.inference_mode():
                    joining = [s for s in joining if not self._drop_cancelled(s)]
                    if joining:
                        self._prefill(joining)
                    if self.rows:
                        self._decode()
            except Exception as exc:  # a failing forward fails the sequences in it, not the server
                logger.error(f"generation failed: {exc}")
                for seq in self.rows + joining:
                    if seq.finish_reason is None:
                        seq.finish_reason = "error"
                        seq.on_finish(seq, exc)
                self.rows, self.cache, self.mask = [], None, None

    def _cancel_all(self) -> None:
        """End every waiting and running sequence as "cancelled" (their callers get what was generated so far)."""
        seqs = list(self.waiting) + self.rows
        jobs = list(self.jobs)
        self.waiting.clear()
        self.jobs.clear()
        for job in jobs:
            finish_cancelled(job, None if job.seqs else ShuttingDownError("the engine closed before this request ran"))
        self.rows, self.cache, self.mask = [], None, None
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

    def _forward(self, ids: Any, mask: Any, positions: Any, cache: Any, adapters: list[Optional[str]]) -> Any:
        kwargs = {"adapter_names": [a or "__base__" for a in adapters]} if self.use_adapter_names else {}
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                         use_cache=True, logits_to_keep=1, **kwargs)
        return out.logits[:, -1, :], out.past_key_values

    def _prefill(self, seqs: list[Sequence]) -> None:
        import torch
        from transformers import DynamicCache

        device = self._device()
        width = max(len(s.prompt) for s in seqs)
        ids = torch.zeros((len(seqs), width), dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, width - len(s.prompt):] = torch.tensor(s.prompt)
            mask[i, width - len(s.prompt):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
        cache = DynamicCache()
        cache.layer_class_to_replicate = _slack_layer_class()
        logits, cache = self._forward(ids, mask, positions, cache, [s.adapter for s in seqs])
        for s in seqs:
            s.pos = len(s.prompt)
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

    # ---- KV cache surgery ---------------------------------------------------------------------
    def _merge(self, cache: Any, mask: Any) -> None:
        if not self.rows:
            self.cache, self.mask = cache, mask
            return
        width = max(self.mask.shape[1], mask.shape[1])
        for old, new in zip(self.cache.layers, cache.layers):
            old.keys = _cat_left_padded(old.keys, new.keys, width, dim=-2)
            old.values = _cat_left_padded(old.values, new.values, width, dim=-2)
        self.mask = _cat_left_padded(self.mask, mask, width, dim=-1)

    def _evict(self, finished: list[Sequence]) -> None:
        import torch

        gone = {id(s) for s in finished}
        keep = [i for i, s in enumerate(self.rows) if id(s) not in gone]
        self.rows = [self.rows[i] for i in keep]
        if not keep:
            self.cache, self.mask = None, None
            return
        index = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        used = self.mask.index_select(0, index)
        start = int(used.any(dim=0).nonzero()[0])  # leading columns that no remaining row uses
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, index)[..., start:, :]
            layer.values = layer.values.index_select(0, index)[..., start:, :]
        self.mask = used[:, start:]

    def _device(self) -> Any:
        return next(self.model.parameters()).device


_SLACK_LAYER: Any = None


def _slack_layer_class() -> Any:
    """A transformers `DynamicLayer` whose keys/values live in buffers with room to grow.

    `DynamicLayer` concatenates every new token onto the whole cache, copying all of it once per decode step (at
    batch 16 on the CPU that was about 14% of the step). Here a step writes one column in place; the buffer grows
    by half its size when full. `keys`/`values` stay plain tensors (views of the buffers), so the scheduler's
    cache surgery can still assign new tensors: a layer whose `keys` is no longer its buffer's view re-adopts it."""
    global _SLACK_LAYER
    if _SLACK_LAYER is None:
        from transformers.cache_utils import DynamicLayer

        class SlackLayer(DynamicLayer):
            buffers: Any = None

            def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
                if not self.is_initialized:
                    self.lazy_initialization(key_states, value_states)
                used = self.keys.shape[-2] if self.keys.numel() else 0
                need = used + key_states.shape[-2]
                kbuf, vbuf = self.buffers or (None, None)
                if (kbuf is None or kbuf.shape[-2] < need or kbuf.shape[:2] != key_states.shape[:2]
                        or self.keys.data_ptr() != kbuf.data_ptr() or self.values.data_ptr() != vbuf.data_ptr()):
                    room = need + max(16, need // 2)
                    kbuf = key_states.new_empty((*key_states.shape[:2], room, key_states.shape[-1]))
                    vbuf = value_states.new_empty((*value_states.shape[:2], room, value_states.shape[-1]))
                    if used:
                        kbuf[..., :used, :] = self.keys
                        vbuf[..., :used, :] = self.values
                    self.buffers = (kbuf, vbuf)
                kbuf[..., used:need, :] = key_states
                vbuf[..., used:need, :] = value_states
                self.keys, self.values = kbuf[..., :need, :], vbuf[..., :need, :]
                return self.keys, self.values

        _SLACK_LAYER = SlackLayer
    return _SLACK_LAYER


def _cat_left_padded(a: Any, b: Any, width: int, dim: int) -> Any:
    return __import__("torch").cat([_pad_left(a, width, dim), _pad_left(b, width, dim)], dim=0)


def _pad_left(t: Any, width: int, dim: int) -> Any:
    import torch

    missing = width - t.shape[dim]
    if missing == 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([torch.zeros(shape, dtype=t.dtype, device=t.device), t], dim=dim)

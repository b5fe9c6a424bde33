"""Token ids -> text pieces for one answer: incremental decoding, stop strings, log-probabilities, events.

Decoding is incremental and linear in the answer's length: each token costs about the same however long the answer
already is (the tokenizers library's `DecodeStream` for fast tokenizers; otherwise a window of the last few tokens is
decoded, as vLLM and TGI do), and the text is the same as decoding the whole answer at once.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Optional

from .engine import InferResponse, StreamEvent, TokenLogprob


class IncrementalDecoder:
    """`step(token)` -> the text that token completes ('' while a character is still incomplete)."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        backend = getattr(tokenizer, "backend_tokenizer", None) if getattr(tokenizer, "is_fast", False) else None
        self.backend = None if getattr(tokenizer, "clean_up_tokenization_spaces", False) else backend
        self.stream = None
        if self.backend is not None:
            from tokenizers.decoders import DecodeStream

            self.stream = DecodeStream(skip_special_tokens=True)
        self.ids: list[int] = []
        self.prefix_offset = 0        # window start (fallback): tokens before it are final text
        self.read_offset = 0          # tokens before it have been returned as text
        self.pending: list[int] = []  # tokens fed since the last text returned

    def step(self, token: int) -> str:
        self.pending.append(token)
        if self.stream is not None:
            piece = self.stream.step(self.backend, token)
        else:
            piece = self._window_step(token)
        if piece:
            self.pending = []
        return piece or ""

    def _window_step(self, token: int) -> Optional[str]:
        self.ids.append(token)
        before = self._decode(self.ids[self.prefix_offset:self.read_offset])
        now = self._decode(self.ids[self.prefix_offset:])
        if len(now) <= len(before) or now.endswith("\ufffd"):
            return None
        self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
        return now[len(before):]

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True) if ids else ""

    def flush(self) -> str:
        """At the end: the text of tokens that never completed a character (as a whole decode shows them)."""
        tail, self.pending = self.pending, []
        return self._decode(tail) if tail else ""


class Answer:
    """Collects one sequence's tokens; pushes StreamEvents to `events` as text becomes final.

    Text is held back while it could still be the start of a stop string, or ends in a partial UTF-8
    character, so a streamed answer never shows text that the final answer does not contain. Only the text not sent
    yet (and the last few characters sent, where a stop string may begin) is looked at per token."""

    def __init__(self, tokenizer: Any, prompt_tokens: int, stop: list[str], eos_ids: set[int], index: int = 0,
                 prefix: str = "", events: "Optional[queue.Queue]" = None, emit: Optional[Any] = None):
        self.tokenizer = tokenizer
        self.prompt_tokens = prompt_tokens
        self.stop = [s for s in stop if s]
        self.eos_ids = eos_ids
        self.index = index
        self.completion_tokens = 0
        self.sent: list[str] = []     # pieces already pushed
        self.recent = ""              # the last characters pushed, as many as a stop string could reach back
        self.tail = prefix            # decoded text not pushed yet (a prefill the answer starts with comes first)
        self.logprobs: list[TokenLogprob] = []
        self.unsent_logprobs: list[TokenLogprob] = []
        self.stopped_by_string = False
        self.finish_reason: Optional[str] = None
        self.error: Optional[BaseException] = None
        self.events: "queue.Queue[StreamEvent | BaseException]" = events if events is not None else queue.Queue()
        self.emit = emit or self.events.put  # where events go (an asyncio queue for async callers)
        self.seq: Any = None          # the scheduler's Sequence, set by the engine
        self.decoder = IncrementalDecoder(tokenizer)
        self.done = threading.Event()

    @property
    def text(self) -> str:
        """The answer so far, stop strings cut."""
        return "".join(self.sent) + self.tail

    # called on the scheduler thread ---------------------------------------------------------------
    def on_token(self, _seq: Any, token: int, logprob: Optional[float], top: list) -> bool:
        self.completion_tokens += 1
        if logprob is not None:
            entry = TokenLogprob(self._piece(token), logprob, [(self._piece(t), v) for t, v in top])
            self.logprobs.append(entry)
            self.unsent_logprobs.append(entry)
        if token in self.eos_ids or self.stopped_by_string:
            return self.stopped_by_string
        return self._add(self.decoder.step(token), final=False)

    def _add(self, piece: str, final: bool) -> bool:
        """Append decoded text; True when it completes a stop string (the text is cut before it)."""
        self.tail += piece
        if piece and self._cut_at_stop():
            return True
        if not final:
            self._push(final=False)
        return False

    def _cut_at_stop(self) -> bool:
        window = self.recent + self.tail
        for stop in self.stop:
            at = window.find(stop)
            if at >= 0:
                self.tail, self.stopped_by_string = self.tail[:max(0, at - len(self.recent))], True
                return True
        return False

    def on_finish(self, seq: Any, error: Optional[BaseException]) -> None:
        self.error = error
        self.finish_reason = seq.finish_reason
        if not self.stopped_by_string:
            self._add(self.decoder.flush(), final=True)
        if error is not None:
            self.emit(error)
        else:
            self._push(final=True)
        self.done.set()

    def _piece(self, token: int) -> str:
        return self.tokenizer.decode([token], skip_special_tokens=False)

    def _push(self, final: bool) -> None:
        end = len(self.tail) if final else self._safe_end()
        piece, self.tail = self.tail[:end], self.tail[end:]
        if piece or final or self.unsent_logprobs:
            event = StreamEvent(text=piece, index=self.index, logprobs=self.unsent_logprobs)
            if final:
                event.finish_reason = self.finish_reason
                event.prompt_tokens, event.completion_tokens = self.prompt_tokens, self.completion_tokens
            self.unsent_logprobs = []
            if piece:
                self.sent.append(piece)
                reach = max((len(s) for s in self.stop), default=1) - 1
                self.recent = (self.recent + piece)[-reach:] if reach else ""
            self.emit(event)

    def _safe_end(self) -> int:
        """How much of the unsent text is final: all but a partial character or the start of a stop string."""
        end = len(self.tail)
        if self.tail.endswith("\ufffd"):
            end -= 1
        for stop in self.stop:  # hold back a tail that may grow into a stop string
            for k in range(min(len(stop) - 1, end), 0, -1):
                if self.tail.endswith(stop[:k], 0, end):
                    end -= k
                    break
        return max(end, 0)

    # read by the caller -------------------------------------------------------------------------
    def response(self) -> InferResponse:
        if self.error is not None:
            raise self.error
        return InferResponse(text=self.text, finish_reason=self.finish_reason or "stop",
                             prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
                             logprobs=self.logprobs if self.logprobs else None,
                             token_ids=list(self.seq.generated) if self.seq is not None else None)

"""Token ids -> text pieces for one answer: incremental decoding, stop strings, log-probabilities, events."""
from __future__ import annotations

import queue
import threading
from typing import Any, Optional

from .engine import InferResponse, StreamEvent, TokenLogprob


class Answer:
    """Collects one sequence's tokens; pushes StreamEvents to `events` as text becomes final.

    Text is held back while it could still be the start of a stop string, or ends in a partial UTF-8
    character, so a streamed answer never shows text that the final answer does not contain."""

    def __init__(self, tokenizer: Any, prompt_tokens: int, stop: list[str], eos_ids: set[int], index: int = 0,
                 prefix: str = "", events: "Optional[queue.Queue]" = None, emit: Optional[Any] = None):
        self.tokenizer = tokenizer
        self.prompt_tokens = prompt_tokens
        self.stop = [s for s in stop if s]
        self.eos_ids = eos_ids
        self.index = index
        self.prefix = prefix          # a prefill the answer starts with (counted as answer text)
        self.kept: list[int] = []     # generated ids that are text (no eos)
        self.completion_tokens = 0
        self.text = ""                # text so far, stop strings cut
        self.sent = 0                 # characters already pushed
        self.logprobs: list[TokenLogprob] = []
        self.unsent_logprobs: list[TokenLogprob] = []
        self.stopped_by_string = False
        self.finish_reason: Optional[str] = None
        self.error: Optional[BaseException] = None
        self.events: "queue.Queue[StreamEvent | BaseException]" = events if events is not None else queue.Queue()
        self.emit = emit or self.events.put  # where events go (an asyncio queue for async callers)
        self.seq: Any = None          # the scheduler's Sequence, set by the engine
        self.done = threading.Event()

    # called on the scheduler thread ---------------------------------------------------------------
    def on_token(self, _seq: Any, token: int, logprob: Optional[float], top: list) -> bool:
        self.completion_tokens += 1
        if logprob is not None:
            entry = TokenLogprob(self._piece(token), logprob, [(self._piece(t), v) for t, v in top])
            self.logprobs.append(entry)
            self.unsent_logprobs.append(entry)
        if token in self.eos_ids:
            return False
        self.kept.append(token)
        text = self.prefix + self.tokenizer.decode(self.kept, skip_special_tokens=True)
        for stop in self.stop:
            at = text.find(stop, max(0, self.sent - len(stop)))
            if at >= 0:
                self.text, self.stopped_by_string = text[:at], True
                return True
        self.text = text
        self._push(final=False)
        return False

    def on_finish(self, seq: Any, error: Optional[BaseException]) -> None:
        self.error = error
        self.finish_reason = seq.finish_reason
        if error is not None:
            self.emit(error)
        else:
            self._push(final=True)
        self.done.set()

    def _piece(self, token: int) -> str:
        return self.tokenizer.decode([token], skip_special_tokens=False)

    def _push(self, final: bool) -> None:
        end = len(self.text)
        if not final:
            end = min(end, self._safe_end())
        piece = self.text[self.sent:end]
        if piece or final or self.unsent_logprobs:
            event = StreamEvent(text=piece, index=self.index, logprobs=self.unsent_logprobs)
            if final:
                event.finish_reason = self.finish_reason
                event.prompt_tokens, event.completion_tokens = self.prompt_tokens, self.completion_tokens
            self.unsent_logprobs = []
            self.sent = end
            self.emit(event)

    def _safe_end(self) -> int:
        end = len(self.text)
        if self.text.endswith("\ufffd"):
            end -= 1
        for stop in self.stop:  # hold back a tail that may grow into a stop string
            for k in range(min(len(stop) - 1, end), 0, -1):
                if self.text[:end].endswith(stop[:k]):
                    end -= k
                    break
        return max(end, self.sent)

    # read by the caller -------------------------------------------------------------------------
    def response(self) -> InferResponse:
        if self.error is not None:
            raise self.error
        return InferResponse(text=self.text, finish_reason=self.finish_reason or "stop",
                             prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
                             logprobs=self.logprobs if self.logprobs else None,
                             token_ids=list(self.seq.generated) if self.seq is not None else None)

"""Turn canonical messages into token ids and labels with the tokenizer's own chat template.

Training, inference and serving all encode through `Template`, so what a model is trained on is
exactly what it is served with. Loss is computed on assistant turns only: each assistant turn's
character span in the rendered conversation is found by rendering the conversation up to it, and the
tokens of that span (including the end-of-turn token) are the trained ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..utils.errors import SwiftallError
from .tools import has_tool_turns, inline_tools, template_renders_tools

IGNORE = -100


class TemplateError(SwiftallError, ValueError):
    """A conversation the chat template cannot encode as asked."""


class TooLongError(TemplateError):
    def __init__(self, length: int, max_length: int):
        super().__init__(f"{length} tokens is longer than --max_length {max_length}")
        self.length, self.max_length = length, max_length


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)

    def __len__(self) -> int:
        return len(self.input_ids)


class Template:
    """Encoding for one tokenizer. `system` fills in rows without a system message."""

    def __init__(self, tokenizer: Any, system: Optional[str] = None, max_length: Optional[int] = None,
                 truncation_strategy: str = "delete"):
        self.tokenizer = tokenizer
        self.system = system
        self.max_length = max_length
        self.truncation_strategy = truncation_strategy
        if not getattr(tokenizer, "is_fast", False):
            raise TemplateError("swiftall needs a fast (Rust) tokenizer to locate assistant tokens")

    # ---- rendering ------------------------------------------------------------------------------
    def _with_system(self, messages: list[dict]) -> list[dict]:
        if self.system is not None and (not messages or messages[0]["role"] != "system"):
            return [{"role": "system", "content": self.system}, *messages]
        return messages

    def render(self, messages: list[dict], add_generation_prompt: bool = False, tools: Any = None) -> str:
        messages, tools = self.with_tools(messages, tools)
        kwargs = {"tools": tools} if tools else {}
        return self.tokenizer.apply_chat_template(self._with_system(messages), tokenize=False,
                                                  add_generation_prompt=add_generation_prompt, **kwargs)

    @property
    def renders_tools(self) -> bool:
        """Whether the chat template puts a tool list into the prompt itself (probed once)."""
        known = getattr(self, "_renders_tools", None)
        if known is None:
            self._renders_tools = True   # while probing, render passes tools through as given
            try:
                known = template_renders_tools(lambda m, t: self.render(m, add_generation_prompt=True, tools=t))
            finally:
                self._renders_tools = known
        return known

    def with_tools(self, messages: list[dict], tools: Any) -> tuple[list[dict], Any]:
        """Tools, tool calls and tool results as the template renders them, or inlined as text (Hermes format) when
        it does not: the same for training rows and served requests (templates/tools.py)."""
        if (tools or has_tool_turns(messages)) and not self.renders_tools:
            return inline_tools(messages, list(tools or [])), None
        return messages, tools

    # ---- training -------------------------------------------------------------------------------
    def assistant_spans(self, messages: list[dict], text: str, tools: Any = None) -> list[tuple[int, int]]:
        spans = []
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            prefix = self.render(messages[:i], add_generation_prompt=True, tools=tools)
            upto = self.render(messages[: i + 1], tools=tools)
            if not (text.startswith(upto) and upto.startswith(prefix)):
                if i == len(messages) - 1:
                    raise TemplateError("the chat template renders this conversation differently from its prefix; "
                                        "cannot locate the final assistant turn")
                continue  # templates that rewrite history (e.g. drop <think>) train on later turns only
            spans.append((len(prefix), len(upto)))
        return spans

    def encode(self, messages: list[dict], tools: Any = None, media: Optional[dict[str, list]] = None,
               objects: Any = None) -> Encoded:
        """Ids and labels for a training conversation (loss on assistant turns).

        `media` ({"images": [...], "audios": [...], "videos": [...]}) and grounding `objects` are for multimodal
        templates; a text template refuses rows that carry them rather than silently dropping them."""
        self._refuse_media(media, objects)
        text = self.render(messages, tools=tools)
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        spans = self.assistant_spans(messages, text, tools=tools)
        labels = [IGNORE] * len(ids)
        j = 0
        for k, (start, _end) in enumerate(offsets):
            while j < len(spans) and start >= spans[j][1]:
                j += 1
            if j < len(spans) and spans[j][0] <= start < spans[j][1]:
                labels[k] = ids[k]
        return self.truncate(Encoded(list(ids), labels))

    def encode_prompt(self, messages: list[dict], tools: Any = None,
                      media: Optional[dict[str, list]] = None, objects: Any = None) -> list[int]:
        """Ids for generation: the conversation so far plus the assistant header."""
        self._refuse_media(media, objects)
        text = self.render(messages, add_generation_prompt=True, tools=tools)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if self.max_length and len(ids) > self.max_length:
            if self.truncation_strategy in ("delete", "error", "right"):
                raise TooLongError(len(ids), self.max_length)
            ids = ids[-self.max_length:]
        return list(ids)

    def encode_for_generation(self, messages: list[dict], tools: Any = None,
                              media: Optional[dict[str, list]] = None, objects: Any = None) -> Encoded:
        """What an engine feeds generate(): prompt ids, plus model inputs in `extra` (multimodal templates put
        pixel values and the like there; a text template has none)."""
        return Encoded(self.encode_prompt(messages, tools=tools, media=media, objects=objects), [])

    def _refuse_media(self, media: Optional[dict[str, list]], objects: Any = None) -> None:
        kinds = [k for k, v in (media or {}).items() if v] + (["grounding objects"] if objects else [])
        if kinds:
            raise TemplateError(f"this model is text-only but the row carries {', '.join(kinds)}; use a multimodal "
                                "model or remove them")

    def truncate(self, encoded: Encoded) -> Encoded:
        limit = self.max_length
        if not limit or len(encoded) <= limit:
            return encoded
        extra = {**encoded.extra, "truncated_from": len(encoded)}
        if self.truncation_strategy == "left":
            return Encoded(encoded.input_ids[-limit:], encoded.labels[-limit:], extra)
        if self.truncation_strategy == "right":
            return Encoded(encoded.input_ids[:limit], encoded.labels[:limit], extra)
        raise TooLongError(len(encoded), limit)  # delete and error: the data layer decides what to report

"""Evaluation items: one question (a conversation to answer), its reference answers, options for multiple
choice, media, and the subset it belongs to. Local files in swiftall's own formats become items here:

- conversations (`messages` / `conversations`): the last assistant turn is the reference;
- `query`/`response` (and the other sft formats the converters know);
- multiple-choice rows: `question`, `choices` (a list, or {"A": ..., "B": ...}), `answer` (index, letter or text);
- any row may carry `references`/`answers` (several accepted answers, e.g. VQA's ten), media columns
  (`images`, `audios`, `videos`) and a `subset`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from ..data.convert import rename_columns, to_messages
from ..data.read import Row
from ..data.validate import validate_sample
from ..utils.errors import DataError
from .extract import LETTERS

EVAL_TYPES = ("qa", "math", "mcq", "caption", "vqa", "asr", "yesno", "code", "ifeval")
MEDIA = ("images", "audios", "videos")


@dataclass
class EvalItem:
    id: str
    messages: list[dict[str, Any]]              # the conversation to answer (no reference in it)
    references: list[str] = field(default_factory=list)
    choices: Optional[list[str]] = None         # multiple choice: the options' texts
    answer_index: Optional[int] = None          # multiple choice: the right option
    media: dict[str, list[Any]] = field(default_factory=dict)
    subset: str = ""
    meta: dict[str, Any] = field(default_factory=dict)  # benchmark extras (tests for code, instruction ids, ...)

    @property
    def question(self) -> str:
        content = self.messages[-1]["content"] if self.messages else ""
        return content if isinstance(content, str) else str(content)

    def prediction_record(self) -> dict[str, Any]:
        return {"id": self.id, "subset": self.subset, "messages": self.messages, "references": self.references,
                **({"choices": self.choices, "answer_index": self.answer_index} if self.choices else {})}


def _choices(row: Row, value: Any) -> list[str]:
    if isinstance(value, dict):
        return [str(value[k]) for k in sorted(value)]
    if isinstance(value, str):
        parts = [p.strip() for p in value.split("\n") if p.strip()]
        if len(parts) < 2:
            raise DataError(f"{row.where}: field 'choices' must be a list of options (or an object A/B/C/...), "
                            f"got the text {value[:60]!r}")
        return parts
    if not isinstance(value, list) or len(value) < 2:
        raise DataError(f"{row.where}: field 'choices' must list at least two options, got {value!r}")
    return [str(v) for v in value]


def _answer_index(row: Row, answer: Any, choices: list[str]) -> int:
    if isinstance(answer, bool) or answer is None:
        raise DataError(f"{row.where}: field 'answer' is missing; give the right option as its index (0-based), "
                        "letter (A, B, ...) or text")
    if isinstance(answer, int) or (isinstance(answer, str) and answer.strip().isdigit()):
        index = int(answer)
        if not 0 <= index < len(choices):
            raise DataError(f"{row.where}: field 'answer' {index} is out of range for {len(choices)} choices")
        return index
    text = str(answer).strip()
    if len(text) == 1 and text.upper() in LETTERS[:len(choices)]:
        return LETTERS.index(text.upper())
    if text in choices:
        return choices.index(text)
    raise DataError(f"{row.where}: field 'answer' {text!r} is neither an index, a letter A-{LETTERS[len(choices)-1]} "
                    "nor one of the choices")


def mcq_item(row: Row, index: int) -> EvalItem:
    data = row.data
    question = data.get("question", data.get("query"))
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{row.where}: field 'question' is missing or empty")
    choices = _choices(row, data["choices"])
    answer = _answer_index(row, data.get("answer", data.get("label")), choices)
    media = {k: _as_list(data[k]) for k in MEDIA if data.get(k)}
    return EvalItem(str(data.get("id", index)), [{"role": "user", "content": question}], [choices[answer]], choices,
                    answer, media, str(data.get("subset", "")))


def conversation_item(row: Row, index: int, columns: dict[str, str]) -> EvalItem:
    """A row in any sft format: everything up to the last assistant turn is the prompt, that turn the reference
    (or `references`/`answers` when given)."""
    rename_columns(row, columns or {})
    sample = to_messages(row, "infer")
    validate_sample(row, sample, "infer")
    messages = list(sample["messages"])
    reference = None
    if messages and messages[-1]["role"] == "assistant":
        reference = messages.pop()["content"]
    extra = row.data.get("references", row.data.get("answers"))
    references = [str(r) for r in _as_list(extra)] if extra not in (None, "", []) else (
        [str(reference)] if reference not in (None, "") else [])
    if not references:
        raise DataError(f"{row.where}: no reference answer: end the conversation with the assistant's answer "
                        "(or give 'response' / 'references'); without one nothing can be scored")
    if not messages or messages[-1]["role"] != "user":
        raise DataError(f"{row.where}: nothing to answer: the conversation must end with a user turn before the "
                        "reference answer")
    media = {k: _as_list(sample[k]) for k in MEDIA if sample.get(k)}
    return EvalItem(str(row.data.get("id", index)), messages, references, media=media,
                    subset=str(row.data.get("subset", "")))


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def items_from_rows(rows: Iterable[Row], columns: Optional[dict[str, str]] = None, label: str = "") -> list[EvalItem]:
    items = []
    for i, row in enumerate(rows):
        if row.error:
            raise DataError(row.error)
        if "choices" in row.data:
            items.append(mcq_item(row, i))
        else:
            items.append(conversation_item(row, i, columns or {}))
    if not items:
        raise DataError(f"--eval_dataset {label}: no rows to evaluate (the file is empty)")
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):  # ids name items in predictions, resume and diff: they must be unique
        for i, item in enumerate(items):
            item.id = str(i)
    return items


def infer_eval_type(items: list[EvalItem]) -> str:
    """qa, mcq, caption or vqa, from what the items hold."""
    if all(item.choices for item in items):
        return "mcq"
    if any(item.media.get("audios") for item in items):
        return "asr"
    if any(item.media.get("images") or item.media.get("videos") for item in items):
        many_answers = sum(len(item.references) >= 3 for item in items) > len(items) / 2
        questions = [item.question.replace("<image>", "").replace("<video>", "").strip() for item in items]
        generic = len(set(questions)) <= max(1, len(items) // 10)
        return "vqa" if many_answers or not generic else "caption"
    return "qa"

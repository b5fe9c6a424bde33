"""Rows of --dataset -> samples of a task, every problem named by file:line and field, before the model loads.

- seq_cls: {"text"|"messages"|"query": ..., "label": int | [int] (multi_label) | float (regression) | a name
  from --label_names}
- embedding / reranker: {"query"|"anchor"|"messages"|"text": ..., "positive": text | [texts], "negative": [...]}
  and ms-swift's {"messages": [...], "positive_messages": [[...]], "negative_messages": [[...], ...]}; a row whose
  `messages` end with an assistant turn and that has no positive uses that answer as its positive. For the
  cosine/contrastive losses a float `label` (0-1) scores the row's positive instead of 1.
"""
from __future__ import annotations

import math
from typing import Any, Optional

from ...data.read import Row
from ...utils.errors import DataError

TEXT_FIELDS = ("query", "anchor", "text", "messages", "conversations")


def _text(row: Row, field: str, value: Any) -> Any:
    """A text or a non-empty list of {role, content} messages."""
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(m, dict) and "content" in m for m in value):
        return [{"role": m.get("role", "user"), "content": str(m["content"])} for m in value]
    raise DataError(f"{row.where}: field '{field}' must be a non-empty text or a list of {{role, content}} "
                    f"messages, got {value!r:.80}")


def anchor_text(row: Row) -> tuple[str, Any]:
    field = next((f for f in TEXT_FIELDS if f in row.data), None)
    if field is None:
        raise DataError(f"{row.where}: no text: give one of the fields {', '.join(TEXT_FIELDS)}")
    return field, _text(row, field, row.data[field])


def _texts(row: Row, field: str, value: Any) -> list:
    """A text, a list of texts, or (for *_messages) a list of message lists."""
    if isinstance(value, str):
        return [_text(row, field, value)]
    if not isinstance(value, list):
        raise DataError(f"{row.where}: field '{field}' must be a text or a list of texts, got {type(value).__name__}")
    if value and isinstance(value[0], dict):  # one message list
        return [_text(row, field, value)]
    return [_text(row, f"{field}[{i}]", v) for i, v in enumerate(value)]


def retrieval_sample(row: Row) -> dict[str, Any]:
    """{"anchor", "positives", "negatives", "label"} of an embedding/reranker row."""
    data = row.data
    field, anchor = anchor_text(row)
    positives: list = []
    for name in ("positive", "positive_messages", "positives", "response"):
        if data.get(name) is not None:
            positives += _texts(row, name, data[name])
    if not positives and isinstance(anchor, list) and len(anchor) > 1 and anchor[-1]["role"] == "assistant":
        anchor, positives = anchor[:-1], [anchor[-1]["content"]]
    if not positives:
        raise DataError(f"{row.where}: no positive: give 'positive' (a text or a list of texts) or "
                        "'positive_messages' with at least one document that matches the "
                        f"'{field}'")
    negatives: list = []
    for name in ("negative", "negative_messages", "negatives"):
        if data.get(name) is not None:
            negatives += _texts(row, name, data[name])
    return {"anchor": anchor, "positives": positives, "negatives": negatives, "label": _score(row)}


def _score(row: Row) -> Optional[float]:
    value = row.data.get("label")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise DataError(f"{row.where}: field 'label' of a retrieval row is the positive's similarity, a number in "
                        f"[0, 1]; got {value!r}")
    return float(value)


def classification_sample(row: Row, spec: Any) -> dict[str, Any]:
    """{"text", "label"} with the label checked against --num_labels/--problem_type/--label_names."""
    _, text = anchor_text(row)
    if "label" not in row.data:
        raise DataError(f"{row.where}: no 'label' field; --task_type seq_cls rows need a label")
    return {"text": text, "label": _label(row, row.data["label"], spec)}


def _label(row: Row, value: Any, spec: Any) -> Any:
    kind, n = spec.problem_type, spec.num_labels
    if kind == "regression":
        values = value if isinstance(value, list) else [value]
        if len(values) != n or not all(_number(v) for v in values):
            raise DataError(f"{row.where}: field 'label': --problem_type regression with --num_labels {n} needs "
                            f"{'a number' if n == 1 else f'{n} numbers'}, got {value!r}")
        return [float(v) for v in values]
    if kind == "multi_label":
        kind = "multi_label_classification"
    if kind == "multi_label_classification":
        if not isinstance(value, list):
            raise DataError(f"{row.where}: field 'label': --problem_type multi_label needs a list of classes "
                            f"(e.g. [0, 2]), got {value!r}")
        hot = [0.0] * n
        for i, v in enumerate(value):
            hot[_index(row, f"label[{i}]", v, spec)] = 1.0
        return hot
    return _index(row, "label", value, spec)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _index(row: Row, field: str, value: Any, spec: Any) -> int:
    names = spec.label_names
    if isinstance(value, str) and value in names:
        return names.index(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        known = f"; or one of the --label_names {', '.join(names)}" if names else ""
        raise DataError(f"{row.where}: field '{field}' must be a class number 0..{spec.num_labels - 1}{known}, "
                        f"got {value!r}")
    if not 0 <= value < spec.num_labels:
        raise DataError(f"{row.where}: field '{field}' is {value}, out of range for --num_labels "
                        f"{spec.num_labels} (classes 0..{spec.num_labels - 1}); raise --num_labels or fix the row")
    return value

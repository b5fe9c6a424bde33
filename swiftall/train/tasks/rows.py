"""Rows of --dataset -> samples of a task, every problem named by file:line and field, before the model loads.

- seq_cls: {"text"|"messages"|"query": ..., "label": int | [int] (multi_label) | float (regression) | a name
  from --label_names}
- embedding / reranker: {"query"|"anchor"|"messages"|"text": ..., "positive": text | [texts], "negative": [...]}
  and ms-swift's {"messages": [...], "positive_messages": [[...]], "negative_messages": [[...], ...]}; a row whose
  `messages` end with an assistant turn and that has no positive uses that answer as its positive. For the
  cosine/contrastive losses a float `label` (0-1) scores the row's positive instead of 1.
- embedding rows may carry media: the query's `images`/`audios`/`videos` (or `query_images`, `anchor_images`, ...),
  each document's `positive_images`/`negative_images` (one entry per document: a path, a list of paths, or [] for
  none; ms-swift's [["b.png"], ...]), and content parts (`image_url`, ...) inside messages. They are checked as chat
  rows' media are (data/validate.py: tags against counts, paths resolved against the dataset file's folder, files
  read as their kind); an item with media becomes {"messages", "images", ..., "source"} (models/tasks.py).
"""
from __future__ import annotations

import math
from typing import Any, Optional

from ...data.convert import join_parts
from ...data.read import Row
from ...data.validate import check_media_items
from ...models.tasks import MEDIA_KINDS
from ...utils.errors import DataError

TEXT_FIELDS = ("query", "anchor", "text", "messages", "conversations")
POSITIVE_FIELDS = ("positive", "positive_messages", "positives", "response")
NEGATIVE_FIELDS = ("negative", "negative_messages", "negatives")
Media = dict[str, tuple[str, list]]  # kind -> (the field that gives them, its items)


def _text(row: Row, field: str, value: Any, parts: Optional[dict[str, list]] = None) -> Any:
    """A text or a non-empty list of {role, content} messages; media given as content parts (image_url, ...) are
    collected into `parts` and leave a tag in the text."""
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(m, dict) and "content" in m for m in value):
        out = []
        for i, m in enumerate(value):
            content = m["content"]
            if isinstance(content, list):
                content = join_parts(row, f"{field}[{i}]", content, parts if parts is not None else {})
            out.append({"role": m.get("role", "user"), "content": str(content)})
        return out
    raise DataError(f"{row.where}: field '{field}' must be a non-empty text or a list of {{role, content}} "
                    f"messages, got {value!r:.80}")


def _anchor_field(row: Row) -> str:
    field = next((f for f in TEXT_FIELDS if f in row.data), None)
    if field is None:
        raise DataError(f"{row.where}: no text: give one of the fields {', '.join(TEXT_FIELDS)}")
    return field


def anchor_text(row: Row) -> tuple[str, Any]:
    field = _anchor_field(row)
    return field, _text(row, field, row.data[field])


def anchor_item(row: Row, task: str = "embedding") -> tuple[str, Any]:
    """The row's query with its media (see the module's docstring): (its field, the item)."""
    field = _anchor_field(row)
    return field, _item(row, field, row.data[field], _anchor_media(row), task)


def _anchor_media(row: Row) -> Media:
    out: Media = {}
    for kind in MEDIA_KINDS:
        for name in (kind, f"query_{kind}", f"anchor_{kind}"):
            if row.data.get(name) is None:
                continue
            if kind in out:
                raise DataError(f"{row.where}: fields '{out[kind][0]}' and '{name}' both give the query's {kind}; "
                                "give them in one field")
            out[kind] = (name, row.data[name])
    return out


def _item(row: Row, field: str, value: Any, media: Media, task: str) -> Any:
    """A text item, or (with media) {"messages", kind: [checked paths], "source"}; only embedding rows take media."""
    parts: dict[str, list] = {}
    text = _text(row, field, value, parts)
    found = {kind: (name, [items] if isinstance(items, str) else items) for kind, (name, items) in media.items()
             if items}
    for kind, items in parts.items():
        name, given = found.get(kind, (field, []))
        found[kind] = (name, [*given, *items])
    if not found:
        return text
    first = next(iter(found.values()))[0]
    if task != "embedding":
        raise DataError(f"{row.where}: field '{first}': --task_type {task} reads text only; rows with images, "
                        "audio or video train --task_type embedding (on a multimodal model)")
    messages = [{"role": "user", "content": text}] if isinstance(text, str) else text
    if len(messages) == 1:
        messages = [{**messages[0], "role": "user"}]  # one message is its content; its media go in it
    texts = [m["content"] for m in messages]
    item: dict[str, Any] = {"messages": messages}
    for kind, (name, items) in found.items():
        item[kind] = check_media_items(row, name, kind, items, texts)
    item["source"] = f"{row.where}: field '{first}'"
    return item


def _raw_texts(row: Row, field: str, value: Any) -> list[tuple[str, Any]]:
    """(field, value) of each document of a text, a list of texts, or (for *_messages) a list of message lists."""
    if isinstance(value, str):
        return [(field, value)]
    if not isinstance(value, list):
        raise DataError(f"{row.where}: field '{field}' must be a text or a list of texts, got {type(value).__name__}")
    if value and isinstance(value[0], dict):  # one message list
        return [(field, value)]
    return [(f"{field}[{i}]", v) for i, v in enumerate(value)]


def _doc_media(row: Row, prefix: str, count: int) -> list[Media]:
    """`{prefix}_images` (and audios, videos): one entry per document, in the order the documents are given."""
    out: list[Media] = [{} for _ in range(count)]
    for kind in MEDIA_KINDS:
        name = f"{prefix}_{kind}"
        value = row.data.get(name)
        if value is None:
            continue
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or len(value) != count:
            got = f"{len(value)} entries" if isinstance(value, list) else f"a {type(value).__name__}"
            raise DataError(f"{row.where}: field '{name}' has {got} but the row has {count} {prefix} document(s); "
                            f"give one entry per document: a path, a list of paths, or [] for none "
                            f"(e.g. [[\"a.png\", \"b.png\"], []])")
        for i, entry in enumerate(value):
            out[i][kind] = (f"{name}[{i}]", [] if entry is None else entry)
    return out


def _documents(row: Row, fields: tuple[str, ...], prefix: str, task: str) -> list:
    raw = [pair for name in fields if row.data.get(name) is not None for pair in _raw_texts(row, name, row.data[name])]
    return [_item(row, field, value, media, task) for (field, value), media in zip(raw, _doc_media(row, prefix,
                                                                                                   len(raw)))]


def retrieval_sample(row: Row, task: str = "embedding") -> dict[str, Any]:
    """{"anchor", "positives", "negatives", "label"} of an embedding/reranker row (`task`: media only for
    embedding)."""
    field, anchor = anchor_item(row, task)
    positives = _documents(row, POSITIVE_FIELDS, "positive", task)
    messages = anchor["messages"] if isinstance(anchor, dict) else anchor
    if not positives and isinstance(messages, list) and len(messages) > 1 and messages[-1]["role"] == "assistant":
        positives = [messages[-1]["content"]]
        anchor = {**anchor, "messages": messages[:-1]} if isinstance(anchor, dict) else messages[:-1]
    if not positives:
        raise DataError(f"{row.where}: no positive: give 'positive' (a text or a list of texts) or "
                        "'positive_messages' with at least one document that matches the "
                        f"'{field}'")
    negatives = _documents(row, NEGATIVE_FIELDS, "negative", task)
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
    _, text = anchor_item(row, "seq_cls")
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

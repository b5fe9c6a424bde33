"""Grounding rows: a row's `objects` fill the `<ref-object>` and `<bbox>` tags of its text in the model family's own
box notation (`ModelFamily.grounding`, a `BoxFormat`).

The row format is ms-swift's: `{"ref": ["sheep"], "bbox": [[x1, y1, x2, y2], ...]}` with boxes in pixels of the
row's image (`"bbox_type": "real"`, the default) or in fractions of it (`"norm1"`); a 2-number box is a point.
`image_id` (one per box, default 0) says which of the row's images a box belongs to. The i-th `<ref-object>` tag
of the conversation takes `ref[i]` and the i-th `<bbox>` tag `bbox[i]`, so every tag needs its object and every
object its tag (a phrase may have several boxes, and boxes need no phrase: the counts of the two lists may differ).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from .encode import TemplateError

REF_TAG, BBOX_TAG = "<ref-object>", "<bbox>"
_OBJECT_RE = re.compile("(<ref-object>|<bbox>)")
BOX_HELP = "a box is [x1, y1, x2, y2] (or a point [x, y]) in pixels of the row's image"


@dataclass
class Objects:
    refs: list[str]
    boxes: list[list[float]]
    image_ids: list[int]
    norm1: bool            # boxes given as fractions of the image (bbox_type "norm1")


def parse_objects(objects: Any, texts: Sequence[str]) -> Optional[Objects]:
    """Check a row's `objects` against the tags in its texts; None when it has neither objects nor tags.

    Raises TemplateError naming the field ('objects.bbox[1]', ...) and what to do."""
    joined = " ".join(t for t in texts if isinstance(t, str))
    n_ref, n_box = joined.count(REF_TAG), joined.count(BBOX_TAG)
    if objects in (None, "", {}) and not (n_ref or n_box):
        return None
    if isinstance(objects, str):
        try:
            objects = json.loads(objects)
        except json.JSONDecodeError as exc:
            raise TemplateError(f"field 'objects' is text but not valid JSON ({exc.msg}); give "
                                '{"ref": [...], "bbox": [[x1, y1, x2, y2], ...]}') from None
    objects = objects or {}
    if not isinstance(objects, dict):
        raise TemplateError(f"field 'objects' must be an object {{\"ref\": [...], \"bbox\": [...]}}, got "
                            f"{type(objects).__name__}")
    refs = _list(objects, "ref")
    for i, ref in enumerate(refs):
        if not isinstance(ref, str) or not ref.strip():
            raise TemplateError(f"field 'objects.ref[{i}]': a phrase must be non-empty text, got {ref!r}")
    raw = _list(objects, "bbox")
    if raw and all(_is_number(v) for v in raw):
        raise TemplateError(f"field 'objects.bbox' is one flat list of numbers; give a list of boxes, e.g. "
                            f"[{raw}]")
    boxes = [_box(i, box) for i, box in enumerate(raw)]
    kind = objects.get("bbox_type") or "real"
    if kind not in ("real", "norm1"):
        raise TemplateError(f"field 'objects.bbox_type': '{kind}' is not 'real' (pixels) or 'norm1' (fractions)")
    _check_counts("ref", len(refs), REF_TAG, n_ref, "phrase")
    _check_counts("bbox", len(boxes), BBOX_TAG, n_box, "box")
    return Objects(refs, boxes, _image_ids(objects.get("image_id"), len(boxes)), kind == "norm1")


def _list(objects: dict, key: str) -> list:
    value = objects.get(key)
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise TemplateError(f"field 'objects.{key}' must be a list, got {type(value).__name__}")
    return list(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _box(i: int, box: Any) -> list[float]:
    if not isinstance(box, (list, tuple)) or len(box) not in (2, 4) or not all(_is_number(v) for v in box):
        raise TemplateError(f"field 'objects.bbox[{i}]': {BOX_HELP}; got {box!r}")
    if not all(math.isfinite(v) for v in box):
        raise TemplateError(f"field 'objects.bbox[{i}]': coordinates must be finite numbers, got {box!r}")
    if len(box) == 4 and (box[0] > box[2] or box[1] > box[3]):
        raise TemplateError(f"field 'objects.bbox[{i}]': {list(box)} has x1 > x2 or y1 > y2; {BOX_HELP}, top-left "
                            "corner first")
    return [float(v) for v in box]


def _check_counts(key: str, items: int, tag: str, tags: int, noun: str) -> None:
    if items == tags:
        return
    if tags > items:
        raise TemplateError(f"field 'objects.{key}': the text has {tags} {tag} tag(s) but objects.{key} holds {items}; "
                            f"give one {noun} per tag")
    raise TemplateError(f"field 'objects.{key}': objects.{key} holds {items} but the text has {tags} {tag} tag(s); "
                        f"put one {tag} tag in the text where each {noun} goes")


def _image_ids(value: Any, n: int) -> list[int]:
    if value is None:
        return [0] * n
    ids = value if isinstance(value, (list, tuple)) else [value] * n
    if len(ids) != n or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ids):
        raise TemplateError(f"field 'objects.image_id': give one image index (0, 1, ...) per box ({n}), got {value!r}")
    return list(ids)


def check_inside(objects: Objects, sizes: Sequence[Optional[tuple[int, int]]]) -> None:
    """Every box lies on its image. `sizes`: (width, height) of each of the row's images, None where unknown
    (e.g. a URL the data layer does not download); the template checks those once the image is read."""
    for i, (box, image) in enumerate(zip(objects.boxes, objects.image_ids)):
        if image >= len(sizes):
            raise TemplateError(f"field 'objects.image_id': box {i} belongs to images[{image}] but the row has "
                                f"{len(sizes)} image(s); give the image or fix image_id")
        if sizes[image] is None:
            continue
        width, height = (1, 1) if objects.norm1 else sizes[image]
        if not all(0 <= x <= width for x in box[0::2]) or not all(0 <= y <= height for y in box[1::2]):
            what = "fractions in [0, 1]" if objects.norm1 else f"pixels of the {width}x{height} image images[{image}]"
            raise TemplateError(f"field 'objects.bbox[{i}]': {_show(box)} lies outside the image; coordinates are "
                                f"{what}")


def fill_objects(messages: list[dict], objects: Objects, fmt: Any, sizes: Sequence[tuple[int, int]],
                 seen: Sequence[tuple[int, int]]) -> list[dict]:
    """Messages with every tag replaced in the family's notation (`fmt`, a BoxFormat). `sizes`: (width, height) of
    each image as given in the row (what the boxes are measured on); `seen`: as the model sees it (coords 'pixels')."""
    check_inside(objects, sizes)
    refs = [fmt.ref.format(ref=r) for r in objects.refs]
    boxes = [_write_box(b, fmt, sizes[k], seen[k], objects.norm1) for b, k in zip(objects.boxes, objects.image_ids)]
    counters = {REF_TAG: iter(refs), BBOX_TAG: iter(boxes)}
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str) and _OBJECT_RE.search(content):
            content = _OBJECT_RE.sub(lambda m: next(counters[m.group(0)]), content)
        out.append({**message, "content": content})
    return out


def _write_box(box: list[float], fmt: Any, size: tuple[int, int], seen: tuple[int, int], norm1: bool) -> str:
    width, height = (1, 1) if norm1 else size
    if fmt.coords == "pixels":
        scale_x, scale_y = seen[0] / width, seen[1] / height
    else:  # norm1000
        scale_x, scale_y = 1000 / width, 1000 / height
    values = [_round(v * (scale_x if j % 2 == 0 else scale_y)) for j, v in enumerate(box)]
    if len(values) == 2:
        return fmt.point.format(x=values[0], y=values[1])
    return fmt.box.format(x1=values[0], y1=values[1], x2=values[2], y2=values[3])


def _round(value: float) -> int:
    return int(math.floor(value + 0.5))


def _show(box: list[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"

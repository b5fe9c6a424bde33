"""Checks on canonical samples. Each problem names file:line and field and says what to do.

Media *paths* are checked here (tags against counts, relative paths resolved against the dataset file's folder,
missing files, files that are not the image, audio or video their field says, media_check.py); decoding
media is the multimodal template's job.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from ..templates import TemplateError
from ..templates.grounding import check_inside, parse_objects
from ..utils.errors import DataError
from .media_check import media_problem
from .read import Row

MEDIA = {"images": "<image>", "audios": "<audio>", "videos": "<video>"}
PREFERENCE_TASKS = ("dpo", "cpo", "simpo", "orpo", "rm", "rlhf")


def validate_sample(row: Row, sample: dict[str, Any], task: str = "sft") -> None:
    if "text" in sample and "messages" not in sample:
        if not isinstance(sample["text"], str) or not sample["text"].strip():
            raise DataError(f"{row.where}: field 'text' is empty or not text; give the text to train on")
        validate_media(row, sample)
        return
    messages = sample["messages"]
    if not messages:
        raise DataError(f"{row.where}: field 'messages' is empty; give at least a user and an assistant turn")
    _check_order(row, messages)
    if task not in ("infer", "grpo") and messages[-1]["role"] != "assistant":
        raise DataError(f"{row.where}: field 'messages[{len(messages) - 1}]': the conversation must end with an "
                        "assistant turn to train on")
    for i, msg in enumerate(messages):
        if msg["role"] == "assistant" and not msg["content"].strip() and not msg.get("tool_calls"):
            raise DataError(f"{row.where}: field 'messages[{i}].content': empty assistant turn; give the answer text "
                            "or remove the row")
    _check_task_fields(row, sample, task)
    validate_media(row, sample)
    validate_objects(row, sample)


def _check_order(row: Row, messages: list[dict]) -> None:
    for i, msg in enumerate(messages):
        if msg["role"] == "system" and i != 0:
            raise DataError(f"{row.where}: field 'messages[{i}].role': a system message may only come first")
    first = 1 if messages[0]["role"] == "system" else 0
    if first >= len(messages) or messages[first]["role"] != "user":
        raise DataError(f"{row.where}: field 'messages[{first}].role': the first turn after the system prompt must "
                        "be the user's")
    for i in range(1, len(messages)):
        prev, cur = messages[i - 1], messages[i]
        if cur["role"] == prev["role"] and cur["role"] in ("user", "assistant") and not prev.get("tool_calls"):
            raise DataError(f"{row.where}: field 'messages[{i}].role': two {cur['role']} turns in a row; merge them "
                            "into one turn or insert the missing reply")
        if cur["role"] == "tool" and not (prev.get("tool_calls") or prev["role"] == "tool"):
            raise DataError(f"{row.where}: field 'messages[{i}].role': a tool result must follow an assistant "
                            "tool call (a function_call turn)")


def _check_task_fields(row: Row, sample: dict[str, Any], task: str) -> None:
    rejected = sample.get("rejected_response")
    if rejected is not None and (not isinstance(rejected, str) or not rejected.strip()):
        raise DataError(f"{row.where}: field 'rejected_response' must be non-empty text")
    if rejected is not None and not sample.get("rejected_messages") and \
            rejected.strip() == (sample["messages"][-1].get("content") or "").strip():
        field = "rejected_response" if "rejected_response" in row.data else "rejected"
        raise DataError(f"{row.where}: field '{field}': the chosen and rejected answers are identical, so the pair "
                        "teaches no preference; give a worse rejected answer or remove the row")
    if task in PREFERENCE_TASKS and rejected is None and not sample.get("rejected_messages"):
        raise DataError(f"{row.where}: a preference row needs a rejected answer: give 'chosen' and 'rejected' "
                        "(or 'rejected_response')")
    if task == "kto" and not isinstance(sample.get("label"), bool):
        raise DataError(f"{row.where}: field 'label' is missing; KTO rows need label true (desirable) or false")


def validate_media(row: Row, sample: dict[str, Any]) -> None:
    texts = [m["content"] for m in sample.get("messages", [])] or [sample.get("text") or ""]
    for field in MEDIA:
        if sample.get(field) is not None:
            sample[field] = check_media_items(row, field, field, sample[field], texts)


def check_media_items(row: Row, field: str, kind: str, items: Any, texts: list[str]) -> list:
    """One list of `kind` media (images, audios, videos) that goes with `texts`, named `field` in errors (e.g.
    'positive_images[1]'), checked as validate_media checks a row's: its tags match its count (no tags: the media go
    first), local paths resolve against the dataset file's folder and are read as their kind. Returns the list
    with resolved paths."""
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list):
        raise DataError(f"{row.where}: field '{field}' must be a list of paths or URLs, got {type(items).__name__}")
    tag = MEDIA[kind]
    tags = sum(len(re.findall(re.escape(tag), t)) for t in texts if isinstance(t, str))
    if tags and tags != len(items):
        raise DataError(f"{row.where}: field '{field}': {tags} {tag} tag(s) in the text but {len(items)} {kind}; give "
                        f"one {kind[:-1]} per tag")
    out = []
    for j, item in enumerate(items):
        if item is None:
            raise DataError(f"{row.where}: field '{field}[{j}]' is null; give a path or URL")
        out.append(_check_media_path(row, f"{field}[{j}]", item, kind) if isinstance(item, str) else item)
    return out


def _check_media_path(row: Row, where: str, item: str, field: str) -> str:
    if item.startswith(("http://", "https://", "data:", "file://")):
        return item
    path = Path(item).expanduser()
    path = path if path.is_absolute() else row.base_dir / path
    if not (path.is_file() or (field == "videos" and path.is_dir())):  # a video may be a folder of frames
        raise DataError(f"{row.where}: field '{where}': file not found: {path} (relative paths are resolved "
                        f"against the dataset file's folder {row.base_dir})")
    if field == "images":
        problem, _ = _image_header(str(path), path.stat().st_mtime_ns)
    else:
        problem = media_problem(path, field)
    if problem:
        kind = {"images": "an image", "audios": "audio", "videos": "a video"}[field]
        raise DataError(f"{row.where}: field '{where}': {path} cannot be read as {kind} ({problem}); replace "
                        "the file or remove the row")
    return str(path)


def validate_objects(row: Row, sample: dict[str, Any]) -> None:
    """Grounding `objects` against the <ref-object>/<bbox> tags, and boxes inside their (local) images."""
    try:
        objects = parse_objects(sample.get("objects"), [m["content"] for m in sample["messages"]])
        if objects is not None:
            check_inside(objects, [_local_image_size(item) for item in sample.get("images") or []])
    except TemplateError as exc:
        raise DataError(f"{row.where}: {exc}") from None


def _local_image_size(item: Any) -> Optional[tuple[int, int]]:
    """(width, height) of an image file already resolved by validate_media; None for URLs and data."""
    if not isinstance(item, str) or item.startswith(("http://", "https://", "data:", "file://")):
        return None
    path = Path(item)
    return _image_header(item, path.stat().st_mtime_ns)[1] if path.is_file() else None


@lru_cache(maxsize=65536)
def _image_header(path: str, _mtime_ns: int) -> tuple[str, Optional[tuple[int, int]]]:
    """Open the image header only (cheap) -> (problem, size); problem '' when it is readable, size None when
    Pillow is not installed."""
    try:
        from PIL import Image
    except ImportError:
        return "", None
    try:
        with Image.open(path) as image:
            size = image.size  # parsed from the header
    except Exception as exc:  # UnidentifiedImageError, truncated headers, ...
        return f"{type(exc).__name__}: {str(exc)[:120]}", None
    return "", size

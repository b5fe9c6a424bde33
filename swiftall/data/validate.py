"""Checks on canonical samples. Each problem names file:line and field and says what to do."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..utils.errors import DataError
from .read import Row

MEDIA = {"images": "<image>", "audios": "<audio>", "videos": "<video>"}


def validate_sample(row: Row, sample: dict[str, Any], task: str = "sft") -> None:
    if "text" in sample and "messages" not in sample:
        if not isinstance(sample["text"], str) or not sample["text"].strip():
            raise DataError(f"{row.where}: field 'text' is empty; give the text to train on")
        return
    messages = sample["messages"]
    if not messages:
        raise DataError(f"{row.where}: field 'messages' is empty; give at least a user and an assistant turn")
    for i, msg in enumerate(messages):
        if msg["role"] == "system" and i != 0:
            raise DataError(f"{row.where}: field 'messages[{i}].role': a system message may only come first")
    turns = [m for m in messages if m["role"] != "system"]
    if not turns or turns[0]["role"] != "user":
        raise DataError(f"{row.where}: field 'messages': the first turn after the system prompt must be the user's")
    for i in range(1, len(messages)):
        prev, cur = messages[i - 1]["role"], messages[i]["role"]
        if prev == cur and cur in ("user", "assistant") and not messages[i - 1].get("tool_calls"):
            raise DataError(f"{row.where}: field 'messages[{i}].role': two {cur} turns in a row; merge them into "
                            "one turn or insert the missing reply")
    if task == "sft":
        if messages[-1]["role"] != "assistant":
            raise DataError(f"{row.where}: field 'messages[{len(messages) - 1}]': the conversation must end with an "
                            "assistant turn to train on")
    for i, msg in enumerate(messages):
        if msg["role"] == "assistant" and not msg["content"].strip() and not msg.get("tool_calls"):
            raise DataError(f"{row.where}: field 'messages[{i}].content': empty assistant turn; give the answer text "
                            "or remove the row")
    validate_media(row, sample)


def validate_media(row: Row, sample: dict[str, Any]) -> None:
    texts = [m["content"] for m in sample.get("messages", [])]
    for field, tag in MEDIA.items():
        items = sample.get(field) or []
        if isinstance(items, str):
            items = [items]
            sample[field] = items
        if not isinstance(items, list):
            raise DataError(f"{row.where}: field '{field}' must be a list of paths or URLs")
        tags = sum(len(re.findall(re.escape(tag), t)) for t in texts)
        if tags and tags != len(items):
            raise DataError(f"{row.where}: field '{field}': {tags} {tag} tag(s) in the text but {len(items)} "
                            f"{field}; give one {field[:-1]} per tag")
        for j, item in enumerate(items):
            if not isinstance(item, str):
                continue  # decoded media (bytes, arrays) are checked when read
            if item.startswith(("http://", "https://", "data:")):
                continue
            path = Path(item) if Path(item).is_absolute() else row.base_dir / item
            if not path.is_file():
                raise DataError(f"{row.where}: field '{field}[{j}]': file not found: {path} (relative paths are "
                                f"resolved against the dataset's folder {row.base_dir})")
            items[j] = str(path)

"""Media tags in message text: `<image>`, `<audio>`, `<video>`, checked against a row's media and placed where the
families expect media when a row has none (the start of the first user turn)."""
from __future__ import annotations

import re

from .encode import TemplateError

TAGS = {"images": "<image>", "videos": "<video>", "audios": "<audio>"}
PART_TYPES = {"<image>": "image", "<video>": "video", "<audio>": "audio"}
TAG_RE = re.compile("(<image>|<video>|<audio>)")


def place_tags(messages: list[dict], counts: dict[str, int]) -> list[dict]:
    """Copies of `messages` whose tags match `counts` ({"images": 2, ...}): a kind with no tags gets one tag per item
    at the start of the first user turn; a kind with tags must have exactly one item per tag."""
    texts = " ".join(m["content"] for m in messages)
    messages = [dict(m) for m in messages]
    missing = ""
    for field, tag in TAGS.items():
        tags, items = texts.count(tag), counts.get(field, 0)
        if tags == 0 and items:
            missing += tag * items
        elif tags != items:
            raise TemplateError(f"field '{field}': {tags} {tag} tag(s) in the text but {items} {field}; give one "
                                f"{field[:-1]} per tag")
    if any(m["role"] == "assistant" and TAG_RE.search(m["content"]) for m in messages):
        raise TemplateError("media tags in an assistant turn are not supported; put media in user turns")
    if missing:
        first = next((m for m in messages if m["role"] == "user"), None)
        if first is None:
            raise TemplateError("the row carries media but has no user turn to put it in")
        first["content"] = missing + first["content"]
    return messages

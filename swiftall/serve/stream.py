"""Server-sent events: the `data:` lines and the usage chunk."""
from __future__ import annotations

import json
from typing import Any

from ..utils.aio import merge_streams  # noqa: F401 (the completions stream merges its prompts' answers)


def sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def usage_chunk(head: dict[str, Any], prompt: int, completion: int) -> str:
    return sse({**head, "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                                 "total_tokens": prompt + completion}})

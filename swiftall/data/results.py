"""Rows of a batch-inference result file, in ms-swift's shape: the model's answer is `response`, the row's
reference answer (if it had one) is kept as `labels`."""
from __future__ import annotations

from typing import Any, Optional


def reference_answer(row: dict[str, Any]) -> Optional[str]:
    """The answer a row already carries: `response` (query/response rows), `output` (alpaca), or the final
    assistant turn of `messages`/`conversations`."""
    for key in ("response", "output"):
        if isinstance(row.get(key), str):
            return row[key]
    for key, role_key, content_key, roles in (("messages", "role", "content", ("assistant",)),
                                              ("conversations", "from", "value", ("gpt", "assistant"))):
        turns = row.get(key)
        if isinstance(turns, list) and turns and isinstance(turns[-1], dict) and turns[-1].get(role_key) in roles:
            content = turns[-1].get(content_key)
            return content if isinstance(content, str) else None
    return None


def result_row(row: dict[str, Any], answer: str) -> dict[str, Any]:
    """The row as written, the answer as `response`, and its reference answer as `labels` (an existing `labels`
    column is left as it is)."""
    out = dict(row)
    reference = reference_answer(row)
    if reference is not None and "labels" not in out:
        out["labels"] = reference
    out["response"] = answer
    return out

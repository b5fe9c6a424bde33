"""Preference rows -> canonical sample: `messages` ending with the chosen answer, plus `rejected_response`
(the rejected final answer) and, when the rejected conversation differs earlier too, `rejected_messages`.

Accepted shapes: `prompt` (text or messages) with `chosen`/`rejected` as text or message lists; Alpaca or
query columns with `chosen`/`rejected`; `chosen`/`rejected` as whole conversations (TRL's implicit prompt,
UltraFeedback's binarized lists) or as Anthropic HH transcripts ("\\n\\nHuman: ...\\n\\nAssistant: ...").
Rows already in canonical form (`messages` + `rejected_response`) need no conversion and are not handled here.
"""
from __future__ import annotations

import re
from typing import Any

from ..utils.errors import DataError
from .convert import alpaca_prompt, message, messages_field, prompt_messages, query_prompt
from .read import Row

HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")


def is_preference(data: dict[str, Any]) -> bool:
    return "chosen" in data or "rejected" in data


def preference_sample(row: Row, media: dict[str, list]) -> tuple[list[dict], dict[str, Any]]:
    data = row.data
    for name in ("chosen", "rejected"):
        if data.get(name) in (None, "", []):
            other = "rejected" if name == "chosen" else "chosen"
            raise DataError(f"{row.where}: field '{name}' is missing or empty; a preference row needs both "
                            f"'chosen' and 'rejected' (this row has '{other}')")
    prompt = _prompt(row, data, media)
    chosen = _side(row, "chosen", data["chosen"], prompt, media)
    rejected = _side(row, "rejected", data["rejected"], prompt, media)
    extras: dict[str, Any] = {"rejected_response": rejected[-1]["content"]}
    if rejected[:-1] != chosen[:-1]:
        extras["rejected_messages"] = rejected
    return chosen, extras


def _prompt(row: Row, data: dict, media: dict[str, list]) -> list[dict] | None:
    if data.get("prompt") not in (None, "", []):
        return prompt_messages(row, "prompt", data["prompt"], media)
    for field in ("messages", "conversations"):
        if data.get(field):
            return messages_field(row, field, data[field], media)
    if data.get("instruction") or data.get("input"):
        return alpaca_prompt(row, data)
    if data.get("query"):
        return query_prompt(row, data)
    return None


def _side(row: Row, field: str, value: Any, prompt: list[dict] | None, media: dict[str, list]) -> list[dict]:
    """One side (chosen or rejected) as a whole conversation ending with an assistant turn."""
    if isinstance(value, str) and prompt is None and HH_TURN.search(value):
        conversation = _hh(row, field, value)
    elif isinstance(value, str):
        if prompt is None:
            raise DataError(f"{row.where}: field '{field}' is an answer but the row has no prompt; add 'prompt' "
                            "(or give chosen/rejected as whole conversations)")
        conversation = [*prompt, message(row, field, "assistant", value)]
    elif isinstance(value, list):
        turns = messages_field(row, field, value, media if field == "chosen" else {})
        starts_with_user = bool(turns) and turns[0]["role"] in ("system", "user")
        conversation = turns if (prompt is None or starts_with_user) else [*prompt, *turns]
    elif isinstance(value, dict):
        conversation = [*(prompt or []), message(row, field, value.get("role", "assistant"), value.get("content"),
                                                 value)]
    else:
        raise DataError(f"{row.where}: field '{field}' must be text or a list of messages, got "
                        f"{type(value).__name__}")
    if not conversation or conversation[-1]["role"] != "assistant":
        raise DataError(f"{row.where}: field '{field}' must end with an assistant answer")
    if not conversation[-1]["content"].strip() and not conversation[-1].get("tool_calls"):
        raise DataError(f"{row.where}: field '{field}': the answer is empty; give the {field} text or remove the "
                        "row")
    return conversation


def _hh(row: Row, field: str, text: str) -> list[dict]:
    parts = HH_TURN.split(text)
    if parts[0].strip():
        raise DataError(f"{row.where}: field '{field}': text before the first 'Human:' turn in an HH transcript")
    out = []
    for i in range(1, len(parts) - 1, 2):
        role = "user" if parts[i] == "Human" else "assistant"
        out.append(message(row, f"{field} (turn {len(out) + 1})", role, parts[i + 1].strip()))
    return out

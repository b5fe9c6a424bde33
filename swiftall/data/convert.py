"""Convert the common dataset formats into the one canonical sample: {"messages": [...], ...extras}."""
from __future__ import annotations

from typing import Any

from ..utils.errors import DataError
from .read import Row

ROLE_NAMES = {"system": "system", "user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant",
              "bot": "assistant", "model": "assistant", "tool": "tool", "function": "tool", "observation": "tool",
              "tool_response": "tool", "tool_call": "assistant", "function_call": "assistant"}
# Fields that every format passes through untouched (media, preference and reward columns).
PASSTHROUGH = ("images", "audios", "videos", "tools", "rejected_response", "label", "solution", "objects")


def rename_columns(row: Row, columns: dict[str, str]) -> None:
    for old, new in columns.items():
        if old in row.data:
            row.data[new] = row.data.pop(old)


def to_messages(row: Row, task: str = "sft") -> dict[str, Any]:
    """One row of any known format -> canonical sample. Raises DataError naming file:line and field."""
    data = row.data
    if "messages" in data:
        messages = _messages_field(row, "messages", data["messages"])
    elif "conversations" in data:
        messages = _sharegpt(row, data)
    elif "instruction" in data or ("output" in data and "input" in data):
        messages = _alpaca(row, data)
    elif "query" in data or "response" in data:
        messages = _query_response(row, data)
    elif "prompt" in data and ("completion" in data or "response" in data):
        messages = [{"role": "user", "content": data["prompt"]},
                    {"role": "assistant", "content": data.get("completion", data.get("response"))}]
    elif "text" in data:
        return {"text": data["text"], **_extras(data)}
    else:
        keys = ", ".join(sorted(data)) or "none"
        raise DataError(f"{row.where}: unknown row format (fields: {keys}); expected 'messages', 'conversations', "
                        "'instruction'/'output', 'query'/'response' or 'text'; rename columns with --columns")
    if data.get("system") and (not messages or messages[0]["role"] != "system"):
        messages.insert(0, {"role": "system", "content": data["system"]})
    return {"messages": messages, **_extras(data)}


def _extras(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in PASSTHROUGH if k in data}


def _messages_field(row: Row, field: str, value: Any) -> list[dict]:
    if not isinstance(value, list):
        raise DataError(f"{row.where}: field '{field}' must be a list of {{role, content}} objects, "
                        f"got {type(value).__name__}")
    out = []
    for i, msg in enumerate(value):
        if not isinstance(msg, dict):
            raise DataError(f"{row.where}: field '{field}[{i}]' must be an object with role and content, "
                            f"got {type(msg).__name__}")
        role = msg.get("role", msg.get("from"))
        content = msg.get("content", msg.get("value"))
        out.append(_message(row, f"{field}[{i}]", role, content, msg))
    return out


def _message(row: Row, where: str, role: Any, content: Any, raw: dict | None = None) -> dict:
    if not isinstance(role, str) or role.lower() not in ROLE_NAMES:
        raise DataError(f"{row.where}: field '{where}.role': unknown role {role!r}; use system, user, assistant "
                        "or tool (ShareGPT's human/gpt also work)")
    if isinstance(content, list):
        content = _join_parts(row, where, content)
    if content is None and raw and raw.get("tool_calls"):
        content = ""
    if not isinstance(content, str):
        raise DataError(f"{row.where}: field '{where}.content' must be text, got {type(content).__name__}")
    message = {"role": ROLE_NAMES[role.lower()], "content": content}
    if raw and raw.get("tool_calls"):
        message["tool_calls"] = raw["tool_calls"]
    return message


def _join_parts(row: Row, where: str, parts: list) -> str:
    """OpenAI content parts -> text with <image>/<audio>/<video> tags where media parts stood."""
    texts = []
    for j, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("text", "")))
        elif kind in ("image", "image_url"):
            texts.append("<image>")
        elif kind in ("audio", "input_audio", "audio_url"):
            texts.append("<audio>")
        elif kind in ("video", "video_url"):
            texts.append("<video>")
        else:
            raise DataError(f"{row.where}: field '{where}.content[{j}]': unknown content part {part!r}; "
                            "use type text, image_url, input_audio or video_url")
    return "".join(texts)


def _sharegpt(row: Row, data: dict) -> list[dict]:
    return _messages_field(row, "conversations", data["conversations"])


def _history(row: Row, history: Any) -> list[dict]:
    if history in (None, ""):
        return []
    if not isinstance(history, list) or not all(isinstance(h, (list, tuple)) and len(h) == 2 for h in history):
        raise DataError(f"{row.where}: field 'history' must be a list of [query, response] pairs")
    out = []
    for i, (q, a) in enumerate(history):
        out.append(_message(row, f"history[{i}][0]", "user", q))
        out.append(_message(row, f"history[{i}][1]", "assistant", a))
    return out


def _alpaca(row: Row, data: dict) -> list[dict]:
    instruction, extra = data.get("instruction", ""), data.get("input", "")
    for name, value in (("instruction", instruction), ("input", extra)):
        if value is not None and not isinstance(value, str):
            raise DataError(f"{row.where}: field '{name}' must be text, got {type(value).__name__}")
    prompt = "\n\n".join(p for p in (instruction, extra) if p)
    return [*_history(row, data.get("history")), _message(row, "instruction", "user", prompt),
            _message(row, "output", "assistant", data.get("output"))]


def _query_response(row: Row, data: dict) -> list[dict]:
    return [*_history(row, data.get("history")), _message(row, "query", "user", data.get("query")),
            _message(row, "response", "assistant", data.get("response"))]

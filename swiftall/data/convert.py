"""Convert the common dataset formats into the one canonical sample: {"messages": [...], ...extras}.

Formats: OpenAI `messages` (content may be a list of parts), ShareGPT `conversations` (`from`/`value`, tool calls
and observations), Alpaca (`instruction`/`input`/`output`/`history`), `query`/`response`/`history`,
`prompt`/`completion`, plain `text` (pre-training), preference rows (`chosen`/`rejected`, see pref_convert.py)
and KTO rows (`label`).

Every column a format does not consume is passed through untouched (media, `tools`, `rejected_response`,
`label`, `solution`, ids, ...), so later stages (preference encoding, reward functions) lose nothing.
"""
from __future__ import annotations

import json
from typing import Any

from ..utils.errors import ConfigError, DataError
from .read import Row

ROLE_NAMES = {"system": "system", "user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant",
              "bot": "assistant", "model": "assistant", "tool": "tool", "observation": "tool",
              "tool_response": "tool", "function_response": "tool", "ipython": "tool",
              "tool_call": "tool_call", "function_call": "tool_call"}
MEDIA_KINDS = {"image": "images", "audio": "audios", "video": "videos"}


def rename_columns(row: Row, columns: dict[str, str], flag: str = "--columns") -> None:
    """Rename a row's columns all at once (so {"a": "b", "b": "c"} swaps cleanly). A rename onto a column the row
    already has and keeps is refused, as `datasets`' rename_columns (and so ms-swift) refuses it: one of the two
    would be lost silently. Raised as ConfigError, so it stops even with --strict false."""
    moves = {old: new for old, new in columns.items() if old in row.data and old != new}
    if not moves:
        return
    clash = [new for new in moves.values() if new in row.data and new not in moves]
    if clash:
        old = next(o for o, n in moves.items() if n == clash[0])
        raise ConfigError(f"{row.where}: {flag} renames '{old}' to '{clash[0]}', but the row already has a "
                          f"'{clash[0]}' column; rename that one too (e.g. {{\"{clash[0]}\": \"{clash[0]}_old\"}}) "
                          f"or drop the rename of '{old}'")
    values = {old: row.data.pop(old) for old in moves}
    for old, new in moves.items():
        row.data[new] = values[old]


def to_messages(row: Row, task: str = "sft") -> dict[str, Any]:
    """One row of any known format -> canonical sample. Raises DataError naming file:line and field."""
    from .pref_convert import is_preference, preference_sample

    if row.error:  # a line that could not be read (invalid JSON, bad bytes)
        raise DataError(row.error)
    data = row.data
    media: dict[str, list] = {}
    if is_preference(data):
        messages, extras = preference_sample(row, media)
        used = {"prompt", "chosen", "rejected", "messages", "conversations", "instruction", "input", "query",
                "history", "system"}
    elif "messages" in data:
        messages, used = messages_field(row, "messages", data["messages"], media), {"messages", "system"}
    elif "conversations" in data:
        messages, used = messages_field(row, "conversations", data["conversations"], media), {"conversations",
                                                                                              "system"}
    elif "instruction" in data or ("output" in data and "input" in data):
        messages, used = _alpaca(row, data), {"instruction", "input", "output", "history", "system"}
    elif "query" in data or "response" in data:
        messages, used = _query_response(row, data, task), {"query", "response", "history", "system"}
    elif "prompt" in data and ("completion" in data or "response" in data):
        answer_field = "completion" if "completion" in data else "response"
        answer = data[answer_field]
        messages = [*prompt_messages(row, "prompt", data["prompt"], media),
                    *(messages_field(row, answer_field, answer, media) if isinstance(answer, list)
                      else [message(row, answer_field, "assistant", answer)])]
        used = {"prompt", "completion", "response", "system"}
    elif "text" in data:
        return {"text": data["text"], **_extras(row, data, {"text"}, media)}
    else:
        keys = ", ".join(sorted(data)) or "none"
        raise DataError(f"{row.where}: unknown row format (fields: {keys}); expected 'messages', 'conversations', "
                        "'instruction'/'output', 'query'/'response', 'prompt'/'completion', 'chosen'/'rejected' "
                        "or 'text'; rename columns with --columns '{\"your_field\": \"query\"}'")
    extras = {**_extras(row, data, used, media), **(extras if is_preference(data) else {})}
    system = data.get("system")
    if system not in (None, "") and (not messages or messages[0]["role"] != "system"):
        if not isinstance(system, str):
            raise DataError(f"{row.where}: field 'system' must be text, got {type(system).__name__}")
        messages.insert(0, {"role": "system", "content": system})
    return {"messages": messages, **extras}


def _extras(row: Row, data: dict[str, Any], used: set[str], media: dict[str, list]) -> dict[str, Any]:
    out = {k: v for k, v in data.items() if k not in used and v is not None}
    for field, items in media.items():  # media given inside content parts join the row's media columns
        existing = out.get(field) or []
        out[field] = [*([existing] if isinstance(existing, str) else existing), *items]
    if "tools" in out and isinstance(out["tools"], str):
        try:
            out["tools"] = json.loads(out["tools"]) if out["tools"].strip() else None
        except json.JSONDecodeError as exc:
            raise DataError(f"{row.where}: field 'tools' is text but not valid JSON ({exc.msg}); give a list of "
                            "tool schemas") from None
        if out["tools"] is None:
            out.pop("tools")
    if "label" in out:
        out["label"] = _label(row, out["label"])
    return out


def _label(row: Row, value: Any) -> bool:
    """KTO labels: true/false (also 1/0 and their strings)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise DataError(f"{row.where}: field 'label' must be true or false (desirable or not), got {value!r}")


def prompt_messages(row: Row, field: str, value: Any, media: dict[str, list]) -> list[dict]:
    """A prompt given as text or as a list of messages."""
    if isinstance(value, list):
        return messages_field(row, field, value, media)
    return [message(row, field, "user", value)]


def messages_field(row: Row, field: str, value: Any, media: dict[str, list] | None = None) -> list[dict]:
    if not isinstance(value, list):
        raise DataError(f"{row.where}: field '{field}' must be a list of {{role, content}} objects, "
                        f"got {type(value).__name__}")
    out: list[dict] = []
    for i, msg in enumerate(value):
        if not isinstance(msg, dict):
            raise DataError(f"{row.where}: field '{field}[{i}]' must be an object with role and content, "
                            f"got {type(msg).__name__}")
        role = msg.get("role", msg.get("from"))
        content = msg.get("content", msg.get("value"))
        converted = message(row, f"{field}[{i}]", role, content, msg, media)
        if converted.get("tool_calls") and out and out[-1]["role"] == "assistant" and \
                (out[-1].get("tool_calls") or converted["content"] == ""):
            out[-1]["tool_calls"] = [*(out[-1].get("tool_calls") or []), *converted["tool_calls"]]  # parallel calls
            continue
        out.append(converted)
    return out


def message(row: Row, where: str, role: Any, content: Any, raw: dict | None = None,
            media: dict[str, list] | None = None) -> dict:
    if not isinstance(role, str) or role.lower() not in ROLE_NAMES:
        raise DataError(f"{row.where}: field '{where}.role': unknown role {role!r}; use system, user, assistant "
                        "or tool (ShareGPT's human/gpt/function_call/observation also work)")
    role = ROLE_NAMES[role.lower()]
    if role == "tool_call":
        return {"role": "assistant", "content": "", "tool_calls": [_tool_call(row, where, content)]}
    if isinstance(content, list):
        content = join_parts(row, where, content, media if media is not None else {})
    if content is None and raw and raw.get("tool_calls"):
        content = ""
    if isinstance(content, (dict, list)) and role == "tool":
        content = json.dumps(content, ensure_ascii=False)  # tool results given as JSON objects
    if content is None:
        raise DataError(f"{row.where}: field '{where}' is missing or null; give the {role} text")
    if not isinstance(content, str):
        raise DataError(f"{row.where}: field '{where}.content' must be text, got {type(content).__name__}")
    out = {"role": role, "content": content}
    for key in ("tool_calls", "name", "tool_call_id"):
        if raw and raw.get(key):
            out[key] = raw[key]
    return out


def _tool_call(row: Row, where: str, content: Any) -> dict:
    """ShareGPT function_call turns hold the call as JSON text: {"name": ..., "arguments": {...}}."""
    call = content
    if isinstance(content, str):
        try:
            call = json.loads(content)
        except json.JSONDecodeError as exc:
            raise DataError(f"{row.where}: field '{where}.content': a tool call must be JSON like "
                            f"{{\"name\": ..., \"arguments\": {{...}}}} ({exc.msg} at column {exc.colno})") from None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise DataError(f"{row.where}: field '{where}.content': a tool call needs a 'name' and 'arguments'")
    arguments = call.get("arguments", call.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            pass  # keep text arguments as given
    return {"type": "function", "function": {"name": call["name"], "arguments": arguments}}


def join_parts(row: Row, where: str, parts: list, media: dict[str, list]) -> str:
    """OpenAI content parts -> text with <image>/<audio>/<video> tags where media parts stood; the media
    themselves (URLs, paths, base64) are collected into `media` in order."""
    texts = []
    for j, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("text", "")))
            continue
        base = {"image_url": "image", "input_image": "image", "input_audio": "audio", "audio_url": "audio",
                "video_url": "video"}.get(kind, kind)
        if base not in MEDIA_KINDS:
            raise DataError(f"{row.where}: field '{where}.content[{j}]': unknown content part {part!r}; "
                            "use type text, image_url, input_audio or video_url")
        texts.append(f"<{base}>")
        payload = part.get(kind) if kind in part else part.get(base)
        if isinstance(payload, dict):
            payload = payload.get("url") or payload.get("data") or payload.get("path")
        if payload is not None:
            media.setdefault(MEDIA_KINDS[base], []).append(payload)
    return "".join(texts)


_messages_field = messages_field  # the name other modules imported before


def _history(row: Row, history: Any) -> list[dict]:
    if history in (None, ""):
        return []
    if not isinstance(history, list) or not all(isinstance(h, (list, tuple)) and len(h) == 2 for h in history):
        raise DataError(f"{row.where}: field 'history' must be a list of [query, response] pairs")
    out = []
    for i, (q, a) in enumerate(history):
        out.append(message(row, f"history[{i}][0]", "user", q))
        out.append(message(row, f"history[{i}][1]", "assistant", a))
    return out


def alpaca_prompt(row: Row, data: dict) -> list[dict]:
    instruction, extra = data.get("instruction", ""), data.get("input", "")
    for name, value in (("instruction", instruction), ("input", extra)):
        if value is not None and not isinstance(value, str):
            raise DataError(f"{row.where}: field '{name}' must be text, got {type(value).__name__}")
    prompt = "\n\n".join(p for p in (instruction, extra) if p)
    if not prompt:
        raise DataError(f"{row.where}: fields 'instruction' and 'input' are both empty; give the instruction")
    return [*_history(row, data.get("history")), message(row, "instruction", "user", prompt)]


def _alpaca(row: Row, data: dict) -> list[dict]:
    return [*alpaca_prompt(row, data), message(row, "output", "assistant", data.get("output"))]


def query_prompt(row: Row, data: dict) -> list[dict]:
    return [*_history(row, data.get("history")), message(row, "query", "user", data.get("query"))]


def _query_response(row: Row, data: dict, task: str) -> list[dict]:
    if "response" not in data and task in ("grpo", "infer"):  # prompt-only rows
        return query_prompt(row, data)
    return [*query_prompt(row, data), message(row, "response", "assistant", data.get("response"))]

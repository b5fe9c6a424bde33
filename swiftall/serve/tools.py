"""Tool calling: tool calls out of the answer, and the prefill that forces one. Tools go into the prompt in
templates/tools.py (the same for training and serving). Parsing accepts the Hermes/Qwen format, Mistral's
`[TOOL_CALLS]` list and a bare Llama-3.1 JSON call.
"""
from __future__ import annotations

import json
import re
import uuid
from typing import Any, Optional

HERMES = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)


def forced_prefill(tool_choice: Any) -> Optional[str]:
    """tool_choice naming a function (or 'required') -> the text the answer is made to start with."""
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name")
        if name:
            return f'<tool_call>\n{{"name": {json.dumps(name)}, "arguments": '
    if tool_choice == "required":
        return '<tool_call>\n{"name": "'
    return None


def parse_tool_calls(text: str, tool_names: Optional[set[str]] = None) -> tuple[Optional[str], list[dict]]:
    """Answer text -> (content left over or None, OpenAI tool_calls)."""
    raw: list[str] = []
    content = text
    if "<tool_call>" in text:
        raw = HERMES.findall(text)
        content = text[: text.index("<tool_call>")]
    elif "[TOOL_CALLS]" in text:
        body = text.split("[TOOL_CALLS]", 1)[1].strip()
        parsed = _loads(body)
        raw = [json.dumps(c) for c in parsed] if isinstance(parsed, list) else [body]
        content = text.split("[TOOL_CALLS]", 1)[0]
    elif text.strip().startswith("{") and '"name"' in text:
        raw, content = [text.strip()], ""
    calls = []
    for item in raw:
        call = _to_call(item, tool_names)
        if call:
            calls.append(call)
    if not calls:
        return text, []
    return (content.strip() or None), calls


def _to_call(item: str, tool_names: Optional[set[str]]) -> Optional[dict]:
    data = _first_json(item)
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        name = data["name"]
        args = data.get("arguments", data.get("parameters", {}))
        arguments = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
    else:  # an unfinished call: keep the name, and the arguments object if it is complete
        match = re.match(r'\s*\{\s*"name"\s*:\s*"([^"]+)"\s*,\s*"(?:arguments|parameters)"\s*:\s*(.*)$', item, re.S)
        if not match:
            return None
        name, rest = match.group(1), match.group(2)
        args = _first_json(rest)
        arguments = json.dumps(args, ensure_ascii=False) if isinstance(args, dict) else rest.strip()
    if tool_names and name not in tool_names:
        return None
    return {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": name, "arguments": arguments}}


def _first_json(text: str) -> Any:
    """The JSON value at the start of `text`, ignoring whatever follows it (None if there is none)."""
    try:
        return json.JSONDecoder().raw_decode(text.strip())[0]
    except (json.JSONDecodeError, TypeError):
        return None


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None

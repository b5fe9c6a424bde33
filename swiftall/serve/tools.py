"""Tool calling: tools into the prompt, tool calls out of the answer.

A chat template that renders `tools` itself (Qwen2.5, Llama 3.1, Mistral, Hermes...) gets them as they are. For
a template that ignores them, the tools go into the system message in the Hermes format (`<tools>` ... and
`<tool_call>{"name", "arguments"}</tool_call>` answers), which is what most open models are trained on.
Parsing accepts the Hermes/Qwen format, Mistral's `[TOOL_CALLS]` list and a bare Llama-3.1 JSON call.
"""
from __future__ import annotations

import json
import re
import uuid
from typing import Any, Optional

HERMES = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)


def tools_system_text(tools: list[dict[str, Any]]) -> str:
    listing = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    return ("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{listing}\n"
            "</tools>\n\nFor each function call, return a json object with function name and arguments within "
            "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
            "<args-json-object>}\n</tool_call>")


def renders_tools(template: Any, messages: list[dict], tools: list[dict]) -> bool:
    """Does the chat template put `tools` into the prompt by itself?"""
    try:
        return template.render(messages, add_generation_prompt=True, tools=tools) != \
            template.render(messages, add_generation_prompt=True)
    except Exception:
        return False


def inline_tools(messages: list[dict], tools: list[dict]) -> list[dict]:
    """Messages for a template without tool support: tools in the system message, calls and results as text."""
    out = []
    for m in messages:
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = "\n".join(f"<tool_call>\n{json.dumps(_call_json(c), ensure_ascii=False)}\n</tool_call>"
                              for c in m["tool_calls"])
            out.append({"role": "assistant", "content": ((m.get("content") or "") + "\n" + calls).strip()})
        elif m["role"] == "tool":
            out.append({"role": "user", "content": f"<tool_response>\n{m.get('content') or ''}\n</tool_response>"})
        else:
            out.append({"role": m["role"], "content": m.get("content") or ""})
    system = tools_system_text(tools)
    if out and out[0]["role"] == "system":
        out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{system}"}
    else:
        out.insert(0, {"role": "system", "content": system})
    return out


def _call_json(call: dict) -> dict:
    fn = call.get("function") or {}
    args = fn.get("arguments")
    try:
        args = json.loads(args) if isinstance(args, str) else args
    except json.JSONDecodeError:
        pass
    return {"name": fn.get("name"), "arguments": args}


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

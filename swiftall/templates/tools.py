"""Tools in the prompt for chat templates that do not render them.

A chat template that renders `tools` itself (Qwen2.5, Llama 3.1, Mistral, Hermes...) gets them as they are. For one
that ignores them (SmolLM2's drops the tool list and renders an assistant turn that only calls a tool as an empty
turn), the tools go into the system message in the Hermes format (`<tools>` ... and `<tool_call>{"name",
"arguments"}</tool_call>` answers, which is what most open models are trained on), calls become answer text and
tool results user turns. Training (`Template.encode`) and serving go through the same functions here, so a model
trained on tool rows is asked in exactly the format it learned.
"""
from __future__ import annotations

import json
from typing import Any, Callable

PROBE_TOOLS = [{"type": "function", "function": {"name": "swiftall_probe_tool", "description": "probe",
                                                  "parameters": {"type": "object", "properties": {}}}}]


def tools_system_text(tools: list[dict[str, Any]]) -> str:
    listing = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    return ("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{listing}\n"
            "</tools>\n\nFor each function call, return a json object with function name and arguments within "
            "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
            "<args-json-object>}\n</tool_call>")


def has_tool_turns(messages: list[dict]) -> bool:
    return any(m.get("tool_calls") or m.get("role") == "tool" for m in messages)


def template_renders_tools(render: Callable[[list[dict], Any], str]) -> bool:
    """Does a chat template (`render(messages, tools)`) put a tool list into the prompt by itself?"""
    probe = [{"role": "user", "content": "hi"}]
    try:
        return render(probe, PROBE_TOOLS) != render(probe, None)
    except Exception:  # a template that fails on tools does not render them
        return False


def inline_tools(messages: list[dict], tools: list[dict]) -> list[dict]:
    """Messages for a template without tool support: tools in the system message, calls and results as text."""
    out = []
    for m in messages:
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = "\n".join(f"<tool_call>\n{json.dumps(call_json(c), ensure_ascii=False)}\n</tool_call>"
                              for c in m["tool_calls"])
            out.append({**_rest(m), "role": "assistant", "content": ((m.get("content") or "") + "\n" + calls).strip()})
        elif m["role"] == "tool":
            out.append({**_rest(m), "role": "user", "content": f"<tool_response>\n{m.get('content') or ''}\n"
                                                                 "</tool_response>"})
        else:
            out.append({**_rest(m), "role": m["role"], "content": m.get("content") or ""})
    if not tools:
        return out
    system = tools_system_text(tools)
    if out and out[0]["role"] == "system":
        out[0] = {**out[0], "content": f"{out[0]['content']}\n\n{system}"}
    else:
        out.insert(0, {"role": "system", "content": system})
    return out


def _rest(message: dict) -> dict:
    """Fields a template may still read (loss flags, names), without the ones turned into text."""
    return {k: v for k, v in message.items() if k not in ("tool_calls", "tool_call_id", "content", "role")}


def call_json(call: dict) -> dict:
    fn = call.get("function") or call
    args = fn.get("arguments")
    try:
        args = json.loads(args) if isinstance(args, str) else args
    except json.JSONDecodeError:
        pass
    return {"name": fn.get("name"), "arguments": args}

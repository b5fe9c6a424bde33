"""An Ollama `Modelfile` beside a GGUF: FROM the file, TEMPLATE and stop tokens derived from the model's own chat
template (rendered with marker messages, so any template that wraps turns in fixed text works), the default
system prompt, and sampling parameters from generation_config.json."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..utils.errors import ConfigError

S, U1, A1, U2 = "\x01SYS\x01", "\x01USR1\x01", "\x01AST1\x01", "\x01USR2\x01"


@dataclass
class TurnFormat:
    """The fixed text around each role's content in a chat template."""

    system_prefix: str
    system_suffix: str
    user_prefix: str
    user_suffix: str
    assistant_prefix: str
    assistant_suffix: str
    default_system: Optional[str]
    system_supported: bool


def _render(tokenizer: Any, messages: list[dict[str, str]], gen: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)


def _between(text: str, a: str, b: str) -> str:
    start = text.index(a) + len(a)
    return text[start:text.index(b, start)]


def turn_format(tokenizer: Any) -> TurnFormat:
    u, a = {"role": "user", "content": U1}, {"role": "assistant", "content": A1}
    try:
        one = _render(tokenizer, [u], False)
        convo = _render(tokenizer, [u, a, {"role": "user", "content": U2}], True)
        closed = _render(tokenizer, [u, a], False)
    except Exception as exc:
        raise ConfigError(f"the chat template could not be rendered for the Ollama Modelfile: {exc}") from exc
    user_suffix = one[one.index(U1) + len(U1):]
    assistant_suffix = closed[closed.index(A1) + len(A1):]
    after_user = _between(convo, U1, A1)
    if not after_user.startswith(user_suffix):
        raise ConfigError("the chat template wraps turns in text that depends on the conversation; write the "
                          "Ollama TEMPLATE by hand")
    assistant_prefix = after_user[len(user_suffix):]
    between = _between(convo, A1, U2)
    user_prefix = between[len(assistant_suffix):] if between.startswith(assistant_suffix) else between
    before_user = one[:one.index(U1)]
    lead = before_user[:len(before_user) - len(user_prefix)] if before_user.endswith(user_prefix) else ""
    fmt = TurnFormat("", "", user_prefix, user_suffix, assistant_prefix, assistant_suffix, None, False)
    try:
        with_system = _render(tokenizer, [{"role": "system", "content": S}, u], False)
    except Exception:   # templates without a system role
        return fmt
    if S in with_system:
        fmt.system_supported = True
        fmt.system_prefix = with_system[:with_system.index(S)]
        rest = _between(with_system, S, U1)
        fmt.system_suffix = rest[:len(rest) - len(user_prefix)] if rest.endswith(user_prefix) else rest
        if lead.startswith(fmt.system_prefix) and lead.endswith(fmt.system_suffix) and lead != fmt.system_prefix:
            fmt.default_system = lead[len(fmt.system_prefix):len(lead) - len(fmt.system_suffix)]
    return fmt


def go_template(fmt: TurnFormat) -> str:
    """Ollama's Go template over .Messages (system, user and assistant turns, then the generation prompt); no
    whitespace-trimming actions, so the newlines of the template survive."""
    system = (f'{{{{ if .System }}}}{fmt.system_prefix}{{{{ .System }}}}{fmt.system_suffix}{{{{ end }}}}'
              if fmt.system_supported else "")
    return (f'{system}{{{{ range .Messages }}}}'
            f'{{{{ if eq .Role "user" }}}}{fmt.user_prefix}{{{{ .Content }}}}{fmt.user_suffix}'
            f'{{{{ else if eq .Role "assistant" }}}}{fmt.assistant_prefix}{{{{ .Content }}}}{fmt.assistant_suffix}'
            f'{{{{ end }}}}{{{{ end }}}}{fmt.assistant_prefix}')


def stop_strings(tokenizer: Any, fmt: TurnFormat) -> list[str]:
    stops = []
    end = fmt.assistant_suffix.strip()
    if end:
        stops.append(end)
    if tokenizer.eos_token and tokenizer.eos_token not in stops:
        stops.append(tokenizer.eos_token)
    return stops


def _quote(text: str) -> str:
    if '"""' in text:
        raise ConfigError('the chat template contains """, which an Ollama Modelfile cannot quote')
    return f'"""{text}"""'


def write_modelfile(folder: Path, gguf_name: str, tokenizer: Any, generation_config: Optional[dict] = None,
                    num_ctx: Optional[int] = None) -> Path:
    fmt = turn_format(tokenizer)
    lines = [f"FROM ./{gguf_name}", f"TEMPLATE {_quote(go_template(fmt))}"]
    if fmt.default_system:
        lines.append(f"SYSTEM {_quote(fmt.default_system)}")
    lines += [f"PARAMETER stop {json.dumps(s)}" for s in stop_strings(tokenizer, fmt)]
    for key, name in (("temperature", "temperature"), ("top_p", "top_p"), ("top_k", "top_k"),
                      ("repetition_penalty", "repeat_penalty")):
        value = (generation_config or {}).get(key)
        if value is not None:
            lines.append(f"PARAMETER {name} {value}")
    if num_ctx:
        lines.append(f"PARAMETER num_ctx {num_ctx}")
    path = Path(folder) / "Modelfile"
    path.write_text("\n".join(lines) + "\n")
    return path

"""Forms built from a command's config fields: each field labelled with its --flag and its help text, values turned
into an argument list (never a shell string), "copy as command line", "copy as YAML" and "load a YAML"."""
from __future__ import annotations

import dataclasses
import json
import shlex
from typing import Any, Optional

from ..config.base import Config, field_default, field_kind
from ..utils.errors import ConfigError


def config_field(cls: type[Config], name: str) -> dataclasses.Field:
    owner = cls._owners.get(name)
    if owner is None:
        raise KeyError(f"swiftall {cls.command} has no --{name}")
    return next(f for f in dataclasses.fields(owner) if f.name == name)


def default_of(cls: type[Config], name: str) -> Any:
    return cls.defaults.get(name, field_default(config_field(cls, name)))


def component(gr: Any, cls: type[Config], name: str, value: Any = None, **kwargs: Any) -> Any:
    """A Gradio input for one flag: checkbox, dropdown, number or text, labelled `--name`, its help as info."""
    field = config_field(cls, name)
    kind, _ = field_kind(field.type)
    default = default_of(cls, name) if value is None else value
    help_text = field.metadata.get("help", "")
    common = {"label": f"--{name}", "info": help_text, "elem_id": f"{cls.command}-{name}", **kwargs}
    choices = field.metadata.get("choices")
    if kind == "bool":
        return gr.Checkbox(value=bool(default), **common)
    if choices:
        return gr.Dropdown(choices=list(choices), value=default, **common)
    if kind in ("int", "float") and isinstance(default, (int, float)):
        return gr.Number(value=default, precision=0 if kind == "int" else None, **common)
    if kind == "list":
        default = " ".join(shlex.quote(str(v)) for v in (default or []))
    if kind == "dict":
        default = json.dumps(default) if default else ""
    # text for flags without a default too (an empty Number would send 0): empty means "the command's default"
    return gr.Textbox(value="" if default is None else str(default), placeholder="(default)", **common)


def flag_values(cls: type[Config], names: list[str], values: list[Any]) -> dict[str, Any]:
    """Form values -> {flag: value} for the flags the user set (empty text and defaults left out)."""
    out: dict[str, Any] = {}
    for name, value in zip(names, values):
        kind, _ = field_kind(config_field(cls, name).type)
        if isinstance(value, str):
            value = value.strip()
            if not value:
                continue
            if kind == "list":
                try:
                    value = shlex.split(value)
                except ValueError as exc:
                    raise ConfigError(f"--{name}: {exc} (quote values that hold spaces)") from None
        if value is None or value == default_of(cls, name):
            continue
        if kind == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        out[name] = value
    return out


def to_args(values: dict[str, Any], extra: str = "") -> list[str]:
    """{flag: value} plus extra command-line text -> an argument list; each value is one argument as typed."""
    args: list[str] = []
    for name, value in values.items():
        args.append(f"--{name}")
        if isinstance(value, list):
            args.extend(str(v) for v in value)
        elif isinstance(value, bool):
            args.append("true" if value else "false")
        else:
            args.append(str(value))
    if extra and extra.strip():
        try:
            args.extend(shlex.split(extra))
        except ValueError as exc:
            raise ConfigError(f"more flags: {exc} (quote values that hold spaces)") from None
    return args


def check_args(cls: type[Config], args: list[str]) -> Config:
    """Parse the argument list exactly as the command will, so a bad flag is reported in the page before a
    process starts."""
    return cls.from_any(list(args))


def as_command(command: str, args: list[str]) -> str:
    return shlex.join(["swiftall", *command.split(), *args])


def as_yaml(cls: type[Config], args: list[str]) -> str:
    """The flags the user set, as a --config YAML (the parsed values, flat)."""
    import yaml

    cfg = check_args(cls, args)
    given = {a[2:].split("=", 1)[0] for a in args if a.startswith("--")}
    table = cls.alias_table()
    names = [table[g] for g in given if g in table]
    data = {name: getattr(cfg, name) for name in cls._owners if name in names}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def load_yaml(cls: type[Config], text: str, source: str = "uploaded YAML") -> dict[str, Any]:
    """A YAML config -> {flag: value}, refusing unknown keys with the same message the command gives."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: cannot parse: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of option: value, got {type(data).__name__}")
    cfg = cls.from_any(dict(data))  # unknown keys and bad values raise here, with the flag named
    from ..config.base import flatten_sections

    table = cls.alias_table()
    flat = flatten_sections(cls, data)
    return {table[k.replace("-", "_")]: getattr(cfg, table[k.replace("-", "_")]) for k in flat}


def form_value(cls: type[Config], name: str, value: Any) -> Any:
    """A config value as its form component shows it (lists as quoted text)."""
    kind, _ = field_kind(config_field(cls, name).type)
    if kind == "list":
        return " ".join(shlex.quote(str(v)) for v in (value or []))
    if kind == "dict" and isinstance(value, dict):
        return json.dumps(value)
    return value


def error_text(exc: BaseException) -> str:
    """The one-line message a user sees for an error raised by a form's action."""
    from ..utils.errors import SwiftallError

    if isinstance(exc, SwiftallError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def optional(value: Any) -> Optional[Any]:
    return value if value not in ("", None) else None

"""Typed config dataclasses: every field carries its help text, aliases and choices.

A command's config is a flat dataclass composed from small mixins (ModelArgs, DataArgs, ...), so that
flags stay flat (`--lora_rank 8`) while each concern keeps its own fields and checks.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from pathlib import Path
from typing import Any, ClassVar

from ..utils.errors import ConfigError

_MISSING = dataclasses.MISSING


def arg(default: Any = None, help: str = "", *, aliases: tuple[str, ...] = (), choices: tuple | None = None,
        metavar: str | None = None) -> Any:
    """Declare a config field. Lists and dicts get fresh copies per instance."""
    meta = {"help": help, "aliases": tuple(aliases), "choices": choices, "metavar": metavar}
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def parse_bool(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in {"1", "true", "yes", "y", "on"}:
        return True
    if value in {"0", "false", "no", "n", "off"}:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def field_kind(tp: Any) -> tuple[str, Any]:
    """Reduce a field annotation to one of: bool, int, float, str, list, dict, any."""
    if isinstance(tp, str):
        tp = eval(tp, vars(typing) | {"Any": Any})  # annotations are postponed strings
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return field_kind(inner[0]) if len(inner) == 1 else ("any", None)
    if origin in (list, tuple):
        return "list", (typing.get_args(tp) or (str,))[0]
    if origin is dict or tp is dict:
        return "dict", None
    for kind in (bool, int, float, str):
        if tp is kind:
            return kind.__name__, None
    return "any", None


def coerce(value: Any, tp: Any, name: str) -> Any:
    """Turn a value from argv, YAML or a dict into the field's type, with a message naming the flag."""
    kind, item = field_kind(tp)
    if value is None:
        return None
    try:
        if kind == "bool":
            return parse_bool(value)
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(f"expected an integer, got {value!r}")
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "str":
            return value if isinstance(value, str) else str(value)
        if kind == "list":
            if isinstance(value, str):
                value = [value]
            sub = {"int": int, "float": float}.get(field_kind(item)[0], str)
            return [sub(v) for v in value]
        if kind == "dict":
            if isinstance(value, str):
                value = json.loads(value) if value.strip() else {}
            if not isinstance(value, dict):
                raise ValueError(f"expected a JSON object, got {value!r}")
            return value
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--{name}: {exc}") from None
    return value


class BaseConfig:
    """Mixin base for config dataclasses. Subclasses define ``_check_*`` methods for validation."""

    command: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, coerce(getattr(self, field.name), field.type, field.name))
            choices = field.metadata.get("choices")
            value = getattr(self, field.name)
            if choices and value is not None and value not in choices:
                raise ConfigError(f"--{field.name}: {value!r} is not one of {', '.join(map(str, choices))}")
        for name in sorted(n for n in dir(type(self)) if n.startswith("_check_")):
            getattr(self, name)()

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def alias_table(cls) -> dict[str, str]:
        table = {}
        for field in dataclasses.fields(cls):
            table[field.name] = field.name
            for alias in field.metadata.get("aliases", ()):
                table[alias] = field.name
        return table

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "") -> "BaseConfig":
        table = cls.alias_table()
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            name = table.get(key.replace("-", "_"))
            if name is None:
                where = f"{source}: " if source else ""
                raise ConfigError(f"{where}unknown option '{key}'{suggest(key, table)}")
            kwargs[name] = value
        return cls(**kwargs)

    @classmethod
    def from_any(cls, obj: Any = None) -> "BaseConfig":
        """Accept a config object, a dict, an argv list, or None (argv from sys.argv)."""
        if isinstance(obj, cls):
            return obj
        if isinstance(obj, BaseConfig):
            return cls.from_dict({k: v for k, v in obj.to_dict().items() if k in cls.alias_table()})
        if isinstance(obj, dict):
            data = dict(obj)
            config_file = data.pop("config", None)
            merged = load_config_file(config_file) if config_file else {}
            merged.update(data)
            return cls.from_dict(merged, source=str(config_file or ""))
        from .argv import parse_argv  # local: argv parsing builds an argparse parser

        import sys

        return parse_argv(cls, list(sys.argv[1:] if obj is None else obj))

    # ---- output -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def save(self, path: str | Path) -> None:
        data = {"command": self.command, **self.to_dict()}
        Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def suggest(key: str, names: Any) -> str:
    close = difflib.get_close_matches(key.lstrip("-").replace("-", "_"), list(names), n=1, cutoff=0.6)
    return f"; did you mean --{close[0]}?" if close else ""


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON config file into a dict, with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # yaml/json parse errors carry line numbers in their message
        raise ConfigError(f"--config {path}: cannot parse: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a mapping of option: value, got {type(data).__name__}")
    return data

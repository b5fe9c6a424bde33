"""Config machinery: small typed sections, and command configs that hold them by composition.

A `Section` is a dataclass of related fields (each declared once, with help text, aliases and choices) and a
`check()` that validates (and may normalise) its own fields only. A `Config` names the sections its command
uses, in the order their checks run; its own `check()` runs last, sees every section and may change none.
Flags stay flat on the command line (`--lora_rank 8`) and as attributes (`cfg.lora_rank`); a `--config` YAML
may use the flat names or nest them under section names (`train: {learning_rate: 1e-4}`).
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

_REGISTRY: dict[str, type["Config"]] = {}  # command -> config class, filled as config modules are imported


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
            if isinstance(value, (str, int, float)):
                value = [value]
            sub = {"int": int, "float": float}.get(field_kind(item)[0], str)
            return [sub(v) for v in value]
        if kind == "dict":
            if isinstance(value, str):
                try:
                    value = json.loads(value) if value.strip() else {}
                except json.JSONDecodeError as exc:
                    raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno}): {value!r}") from None
            if not isinstance(value, dict):
                raise ValueError(f"expected a JSON object, got {value!r}")
            return value
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--{name}: {exc}") from None
    return value


def field_default(field: dataclasses.Field) -> Any:
    return field.default if field.default is not dataclasses.MISSING else field.default_factory()


class Section:
    """A group of related fields. Subclasses are dataclasses; `check` validates and normalises their own fields."""

    name: ClassVar[str] = ""    # used as the YAML key and in messages
    title: ClassVar[str] = ""   # heading of this group in --help

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = coerce(getattr(self, field.name), field.type, field.name)
            choices = field.metadata.get("choices")
            if choices and value is not None and value not in choices:
                raise ConfigError(f"--{field.name}: {value!r} is not one of {', '.join(map(str, choices))}")
            setattr(self, field.name, value)

    def check(self) -> None:
        """Validate this section's fields (override). It sees no other section."""


class Config:
    """A command's config: the sections it uses (checked in this order), then its own read-only `check`."""

    command: ClassVar[str] = ""
    sections: ClassVar[tuple[type[Section], ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}  # this command's defaults for fields of shared sections
    _owners: ClassVar[dict[str, type[Section]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        owners: dict[str, type[Section]] = {}
        for section in cls.sections:
            for field in dataclasses.fields(section):
                if field.name in owners:
                    raise TypeError(f"{cls.__name__}: field {field.name!r} is declared by both "
                                    f"{owners[field.name].__name__} and {section.__name__}")
                owners[field.name] = section
        shadowing = [n for n in owners if callable(getattr(Config, n, None)) or callable(getattr(owners[n], n, None))]
        if shadowing:
            raise TypeError(f"{cls.__name__}: field(s) {shadowing} would hide methods of the config or a section; "
                            "rename them (an alias may keep the flag's name)")
        unknown = set(cls.defaults) - set(owners)
        if unknown:
            raise TypeError(f"{cls.__name__}.defaults names fields of no section: {sorted(unknown)}")
        cls._owners = owners
        if cls.command:
            _REGISTRY[cls.command] = cls

    def __init__(self, **values: Any) -> None:
        unknown = [k for k in values if k not in self._owners]
        if unknown:
            raise ConfigError(f"swiftall {self.command}: unknown option '{unknown[0]}'"
                              f"{suggest(unknown[0], self._owners)}")
        built = {}
        for section in self.sections:
            mine = {n: v for n, v in (self.defaults | values).items() if self._owners[n] is section}
            built[section.name] = section(**mine)
        object.__setattr__(self, "_sections", built)
        object.__setattr__(self, "_read_only", False)
        for section in built.values():
            section.check()
        object.__setattr__(self, "_read_only", True)
        try:
            self.check()
        finally:
            object.__setattr__(self, "_read_only", False)

    def check(self) -> None:
        """Checks across sections (override). It may read every field and change none."""

    # ---- flat attribute access ----------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        owner = type(self)._owners.get(name)
        if owner is None or name.startswith("_"):
            raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        return getattr(self.__dict__["_sections"][owner.name], name)

    def __setattr__(self, name: str, value: Any) -> None:
        owner = self._owners.get(name)
        if owner is None:
            object.__setattr__(self, name, value)
            return
        if self._read_only:
            raise RuntimeError(f"{type(self).__name__}.check changed --{name}; checks across sections must not "
                               "change fields (normalise them in their own section's check)")
        field = next(f for f in dataclasses.fields(owner) if f.name == name)
        setattr(self._sections[owner.name], name, coerce(value, field.type, name))

    def section(self, name: str) -> Section:
        return self._sections[name]

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def field_defaults(cls) -> dict[str, Any]:
        """Every field's default for this command (its `defaults` over the sections' own)."""
        return {f.name: cls.defaults.get(f.name, field_default(f)) for s in cls.sections for f in dataclasses.fields(s)}

    @classmethod
    def alias_table(cls) -> dict[str, str]:
        table = {}
        for section in cls.sections:
            for field in dataclasses.fields(section):
                table[field.name] = field.name
                for alias in field.metadata.get("aliases", ()):
                    table[alias] = field.name
        return table

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "") -> "Config":
        table = cls.alias_table()
        where = f"{source}: " if source else ""
        kwargs: dict[str, Any] = {}
        given: dict[str, str] = {}
        for key, value in flatten_sections(cls, data).items():
            name = table.get(key.replace("-", "_"))
            if name is None:
                raise ConfigError(f"{where}{unknown_option_message(cls, key)}")
            if name in kwargs:  # two aliases of one field: lists add up, single values must agree
                if field_kind(_field(cls, name).type)[0] == "list":
                    value = [*coerce(kwargs[name], _field(cls, name).type, name),
                             *coerce(value, _field(cls, name).type, name)]
                elif value != kwargs[name]:
                    raise ConfigError(f"{where}--{given[name]} and --{key} set the same option ({name}) to "
                                      f"different values; give one")
            kwargs[name], given[name] = value, key
        return cls(**kwargs)

    @classmethod
    def from_any(cls, obj: Any = None) -> "Config":
        """Accept a config object, a dict, an argv list, or None (argv from sys.argv)."""
        if isinstance(obj, cls):
            return obj
        if isinstance(obj, Config):
            return cls.from_dict({k: v for k, v in obj.to_dict().items() if k in cls._owners})
        if isinstance(obj, dict):
            data = dict(obj)
            config_file = data.pop("config", None)
            merged = flatten_sections(cls, load_config_file(config_file)) if config_file else {}
            merged.update(flatten_sections(cls, data))
            return cls.from_dict(merged, source=str(config_file or ""))
        from .argv import parse_argv  # local: argv parsing builds an argparse parser

        import sys

        return parse_argv(cls, list(sys.argv[1:] if obj is None else obj))

    # ---- output -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._owners}

    def to_sections(self) -> dict[str, dict[str, Any]]:
        return {name: dataclasses.asdict(section) for name, section in self._sections.items()}

    def save(self, path: str | Path) -> None:
        data = {"command": self.command, **self.to_dict()}
        Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"


def _field(cls: type[Config], name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(cls._owners[name]) if f.name == name)


def flatten_sections(cls: type[Config], data: dict[str, Any]) -> dict[str, Any]:
    """`{train: {learning_rate: 1e-4}}` -> `{learning_rate: 1e-4}`; a key that is a section of this command and
    holds a mapping is a section (a field of the same name never holds a mapping)."""
    names = {s.name: s for s in cls.sections}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        section = names.get(key)
        holds_mapping = key in cls._owners and field_kind(_field(cls, key).type)[0] == "dict"
        if section is not None and isinstance(value, dict) and not holds_mapping:
            own = {f.name for f in dataclasses.fields(section)} | {
                a for f in dataclasses.fields(section) for a in f.metadata.get("aliases", ())}
            for inner, inner_value in value.items():
                if inner.replace("-", "_") not in own:
                    raise ConfigError(f"section '{key}': '{inner}' is not one of its options "
                                      f"({', '.join(sorted(f.name for f in dataclasses.fields(section)))})")
                flat[inner] = inner_value
        else:
            flat[key] = value
    return flat


def commands_using(key: str) -> list[str]:
    """The commands that take this flag (or alias)."""
    key = key.lstrip("-").replace("-", "_")
    return [command for command, cls in _REGISTRY.items() if key in cls.alias_table()]


def unknown_option_message(cls: type[Config], key: str) -> str:
    flag = "--" + key.lstrip("-")
    users = commands_using(key)
    if users:
        return (f"{flag} is not an option of swiftall {cls.command}; it belongs to swiftall "
                f"{', '.join(users)} (see swiftall {cls.command} --help for this command's flags)")
    return f"unknown flag {flag}{suggest(key, list(cls.alias_table()) + ['config'])} " \
           f"(see swiftall {cls.command} --help)"


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

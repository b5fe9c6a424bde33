"""Flat `--snake_case` flags for a config dataclass, built with argparse.

It lives beside the configs (not in cli/) so that pipelines accept argv lists too.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from ..utils.errors import ConfigError
from .base import BaseConfig, field_kind, load_config_file, suggest


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would exit; we raise a ConfigError instead
        raise ConfigError(f"{self.prog}: {message}")


def build_parser(cls: type[BaseConfig], prog: str | None = None, description: str = "") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog or f"swiftall {cls.command}", description=description or (cls.__doc__ or "").strip(),
                     allow_abbrev=False, argument_default=argparse.SUPPRESS,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", metavar="FILE", help="YAML or JSON file of option: value pairs; flags override it")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for field in dataclasses.fields(cls):
        owner = _owner(cls, field.name)
        group = groups.setdefault(owner, parser.add_argument_group(owner))
        meta = field.metadata
        names = [f"--{field.name}"] + [f"--{a}" for a in meta.get("aliases", ())]
        kind, _ = field_kind(field.type)
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        help_text = meta.get("help", "")
        if meta.get("aliases"):
            help_text += f" (alias: {', '.join('--' + a for a in meta['aliases'])})"
        help_text += f" [default: {default}]"
        kwargs: dict[str, Any] = {"help": help_text.replace("%", "%%"), "dest": field.name, "metavar": meta.get("metavar")}
        if kind == "bool":
            kwargs.update(nargs="?", const="true", metavar=meta.get("metavar") or "true|false")
        elif kind == "list":
            kwargs.update(nargs="+")
        if meta.get("choices") and kind != "bool":
            kwargs["metavar"] = kwargs["metavar"] or "{" + ",".join(map(str, meta["choices"])) + "}"
        group.add_argument(*names, **kwargs)
    return parser


def _owner(cls: type, name: str) -> str:
    for base in reversed(cls.__mro__):
        if name in getattr(base, "__annotations__", {}):
            return base.__name__
    return cls.__name__


def parse_argv(cls: type[BaseConfig], argv: list[str]) -> BaseConfig:
    parser = build_parser(cls)
    known, unknown = parser.parse_known_args(argv)
    if unknown:
        flag = next((u for u in unknown if u.startswith("-")), unknown[0])
        if flag.startswith("-"):
            names = [n for n in cls.alias_table()] + ["config"]
            raise ConfigError(f"swiftall {cls.command}: unknown flag {flag}{suggest(flag, names)} "
                              f"(see swiftall {cls.command} --help)")
        raise ConfigError(f"swiftall {cls.command}: unexpected value {flag!r}; values follow a --flag")
    values = vars(known)
    config_file = values.pop("config", None)
    data = load_config_file(config_file) if config_file else {}
    if data:  # YAML keys may use aliases too; resolve them before flags override
        table = cls.alias_table()
        for key in list(data):
            if key.replace("-", "_") not in table:
                raise ConfigError(f"{config_file}: unknown option '{key}'{suggest(key, table)}")
        data = {table[k.replace('-', '_')]: v for k, v in data.items()}
    data.update(values)
    return cls.from_dict(data, source=str(config_file or "argv"))


def print_help(cls: type[BaseConfig], file=None) -> None:
    build_parser(cls).print_help(file or sys.stdout)

"""Flat `--snake_case` flags for a command's config, built with argparse, grouped by section in --help.

It lives beside the configs (not in cli/) so that pipelines accept argv lists too.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from ..utils.errors import ConfigError
from .base import Config, field_default, field_kind, flatten_sections, load_config_file, unknown_option_message


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would exit; we raise a ConfigError instead
        raise ConfigError(f"{self.prog}: {message}")


def build_parser(cls: type[Config], prog: str | None = None, description: str = "") -> argparse.ArgumentParser:
    prog = prog or f"swiftall {cls.command}"
    parser = _Parser(prog=prog, usage=f"{prog} [--flag value ...] [--config FILE]", description=description or (cls.__doc__ or "").strip(),
                     allow_abbrev=False, argument_default=argparse.SUPPRESS,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", metavar="FILE", help="YAML or JSON file of option: value pairs (flat, or "
                        "nested under the section names below); flags override it")
    for section in cls.sections:
        group = parser.add_argument_group(f"{section.title or section.name} [{section.name}]")
        for field in dataclasses.fields(section):
            _add_flag(group, field, cls.defaults.get(field.name, field_default(field)))
    return parser


def _add_flag(group: Any, field: dataclasses.Field, default: Any) -> None:
    meta = field.metadata
    names = [f"--{field.name}"] + [f"--{a}" for a in meta.get("aliases", ())]
    kind, _ = field_kind(field.type)
    help_text = meta.get("help", "")
    if meta.get("aliases"):
        help_text += f" (alias: {', '.join('--' + a for a in meta['aliases'])})"
    help_text += f" [default: {default}]"
    kwargs: dict[str, Any] = {"help": help_text.replace("%", "%%"), "dest": field.name, "metavar": meta.get("metavar")}
    if kind == "bool":
        kwargs.update(nargs="?", const="true", metavar=meta.get("metavar") or "true|false")
    elif kind == "list":  # values of a flag and of its aliases add up (--train_dataset a --custom_train_dataset_path b)
        kwargs.update(nargs="+", action="extend")
    if meta.get("choices") and kind != "bool":
        kwargs["metavar"] = kwargs["metavar"] or "{" + ",".join(map(str, meta["choices"])) + "}"
    group.add_argument(*names, **kwargs)


def parse_argv(cls: type[Config], argv: list[str]) -> Config:
    parser = build_parser(cls)
    known, unknown = parser.parse_known_args(argv)
    if unknown:
        flag = next((u for u in unknown if u.startswith("-")), unknown[0])
        if flag.startswith("-"):
            raise ConfigError(f"swiftall {cls.command}: {unknown_option_message(cls, flag.split('=')[0])}")
        raise ConfigError(f"swiftall {cls.command}: unexpected value {flag!r}; values follow a --flag")
    values = vars(known)
    config_file = values.pop("config", None)
    data = flatten_sections(cls, load_config_file(config_file)) if config_file else {}
    if data:  # YAML keys may use aliases too; resolve them before flags override
        table = cls.alias_table()
        for key in list(data):
            if key.replace("-", "_") not in table:
                raise ConfigError(f"{config_file}: {unknown_option_message(cls, key)}")
        data = {table[k.replace('-', '_')]: v for k, v in data.items()}
    data.update(values)
    return cls.from_dict(data, source=str(config_file or "argv"))


def print_help(cls: type[Config], file=None) -> None:
    build_parser(cls).print_help(file or sys.stdout)

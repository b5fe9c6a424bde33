"""A form over one command's flags (Train, Export, Evaluate and Deploy share it): components from the config
fields, the argument list they make, checks before a process starts, and starting it as a run."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

from ..config.base import Config
from ..utils.errors import ConfigError
from . import forms
from .runs import RunManager

PATH_FLAGS = ("model", "adapters", "dataset", "val_dataset", "sft_model_path", "ref_model", "teacher_model",
              "reward_model", "resume_from_checkpoint", "custom_dataset_info", "plugin")


def check_model(value: Optional[str], flag: str = "model") -> None:
    """A --model value is a local folder/file, a registered name or a hub id; anything else is refused here with
    the command's own words, before a process starts."""
    if not value:
        return
    from ..hub.resolve import looks_like_hub_id
    from ..models.registry import get_model_meta

    path = Path(value).expanduser()
    if path.exists() or get_model_meta(value) is not None or looks_like_hub_id(value):
        return
    raise ConfigError(f"--{flag} {value}: no such folder or file, not a registered name (swiftall model list) and "
                      "not a hub id of the form 'org/name'")


def check_paths(values: dict[str, Any]) -> None:
    """Values that are clearly local paths (start with /, ./, ../ or ~) must exist."""
    for flag in PATH_FLAGS:
        items = values.get(flag)
        for item in items if isinstance(items, list) else [items] if items else []:
            item = str(item).split("=", 1)[-1] if flag == "adapters" else str(item).split("#", 1)[0]
            if item.startswith(("/", "./", "../", "~")) and not Path(item).expanduser().exists():
                raise ConfigError(f"--{flag} {item}: no such file or folder")
    if values.get("model"):
        check_model(values["model"])


class CommandForm:
    """Components for `names` of `cls` plus a "more flags" box; `args(*values)` gives the argument list."""

    def __init__(self, gr: Any, cls: type[Config], names: list[str], t: Any,
                 values: Optional[dict[str, Any]] = None):
        self.gr, self.cls, self.names, self.t = gr, cls, [n for n in names if n in cls._owners], t
        self.values = values or {}
        self.components: dict[str, Any] = {}

    def build(self, columns: int = 3) -> None:
        gr = self.gr
        for start in range(0, len(self.names), columns):
            with gr.Row():
                for name in self.names[start:start + columns]:
                    self.components[name] = forms.component(gr, self.cls, name, self.values.get(name))
        self.extra = gr.Textbox(label=self.t("more_flags"), elem_id=f"{self.cls.command}-extra")

    @property
    def inputs(self) -> list[Any]:
        return [self.components[n] for n in self.names] + [self.extra]

    def flag_values(self, values: list[Any]) -> dict[str, Any]:
        return forms.flag_values(self.cls, self.names, list(values[:len(self.names)]))

    def args(self, values: list[Any], head: Optional[list[str]] = None) -> list[str]:
        """The argument list of the form (`head` first, e.g. rlhf's --rlhf_type), checked as the command parses."""
        flags = self.flag_values(values)
        args = list(head or []) + forms.to_args(flags, values[len(self.names)] or "")
        forms.check_args(self.cls, args)
        check_paths(flags)
        return args


def place_output_dir(args: list[str], runs_dir: Path, stem: str) -> tuple[list[str], Path]:
    """--output_dir under the page's runs folder: a relative value goes there, none gets `<stem>-<time>`. A folder
    that already holds files is refused (runs are never overwritten from the page)."""
    value = None
    if "--output_dir" in args:
        i = args.index("--output_dir")
        value = args[i + 1] if i + 1 < len(args) else None
        args = args[:i] + args[i + 2:]
    folder = Path(value).expanduser() if value else Path(f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    if not folder.is_absolute():
        folder = runs_dir / folder
    if folder.exists() and any(folder.iterdir()) and "--overwrite_output_dir" not in args:
        raise ConfigError(f"--output_dir {folder} is not empty; choose a new name (runs are never overwritten)")
    return [*args, "--output_dir", str(folder)], folder


def start_run(manager: RunManager, command: str, args: list[str], output_dir: Optional[Path] = None) -> str:
    record = manager.start(command, args, output_dir)
    return (f"started **{record['id']}** (process group {record['pid']}); follow it in the Runs tab. "
            f"Command: `{forms.as_command(command, args)}`")

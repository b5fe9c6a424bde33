"""Run folders and `--adapters` values: the one reading of each, shared by infer, deploy, export and rlhf.

A run folder is what `sft`/`rlhf` write: a LoRA adapter (adapter_config.json) or a full model (config.json),
with args.json (the resolved config) in it or, for a checkpoint-N folder, in the run folder above it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from ..utils.errors import ConfigError

ADAPTER_FILE = "adapter_config.json"


@dataclass(frozen=True)
class AdapterSpec:
    """One `--adapters` value: `DIR`, `name=DIR`, or either with DIR/adapter_config.json for DIR."""

    item: str          # as the user wrote it
    name: str          # the name requests choose it by ("default", "adapter1", ... when unnamed)
    path: Path
    named: bool        # written as name=DIR

    @property
    def normalized(self) -> str:
        return f"{self.name}={self.path}" if self.named else str(self.path)


def parse_adapters(items: Sequence[str]) -> list[AdapterSpec]:
    """`name=DIR` names an adapter; a value that is an existing path is a path even when it holds '='. Unnamed
    adapters are called "default" (the first) and "adapterN"."""
    specs = []
    for i, item in enumerate(items):
        item = str(item)
        name, sep, folder = item.partition("=")
        named = bool(sep) and bool(name) and not Path(item).expanduser().exists() and "/" not in name
        if not named:
            name, folder = ("default" if i == 0 else f"adapter{i}"), item
        path = Path(folder).expanduser()
        if path.name == ADAPTER_FILE and not path.is_dir():
            path = path.parent   # --adapters RUN/adapter_config.json means RUN
        specs.append(AdapterSpec(item, name, path, named))
    names = [s.name for s in specs]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"--adapters: the name '{name}' is given twice; give each adapter its own name=DIR")
    return specs


def run_args(folder: str | Path) -> Optional[dict[str, Any]]:
    """args.json of a run folder, or of the run folder above a checkpoint-N folder."""
    folder = Path(folder)
    for candidate in (folder / "args.json", folder.parent / "args.json"):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text())
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{candidate}: not valid JSON ({exc.msg}, line {exc.lineno}); restore the run's "
                                  "args.json or pass --model") from None
    return None


@dataclass(frozen=True)
class Run:
    folder: Path
    kind: str                          # "adapter" | "full"
    base: Optional[str]                # adapter runs: the model the adapter was trained on (name or folder)
    model_type: Optional[str]
    system: Optional[str]
    start_adapters: tuple[str, ...]    # adapters merged into the base before this one was trained

    def base_key(self) -> tuple[str, tuple[str, ...]]:
        """What two runs must share to be served over the same base weights."""
        base = self.base or ""
        if base and Path(base).exists():
            base = str(Path(base).resolve())
        return base, self.start_adapters


def read_run(folder: str | Path, label: str) -> Run:
    """A run folder (or checkpoint-N, or any adapter/model folder). `label` starts error messages
    (e.g. '--adapters a=out/run1')."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"{label}: no such folder {folder}")
    saved = run_args(folder) or {}
    if (folder / ADAPTER_FILE).is_file():
        kind = "adapter"
    elif (folder / "config.json").is_file():
        kind = "full"
    else:
        raise ConfigError(f"{label}: cannot tell its base model: {folder} holds neither {ADAPTER_FILE} (a LoRA run) "
                          "nor config.json (a model); give a run folder or one of its checkpoint-N folders")
    return Run(folder, kind, _base(folder, saved) if kind == "adapter" else None, saved.get("model_type"),
               saved.get("system"), tuple(saved.get("start_adapters") or ()))


def _base(folder: Path, saved: dict[str, Any]) -> Optional[str]:
    """The registered name the run was given (so it is resolved and served by that name), else the folder it
    loaded, else what adapter_config.json says."""
    from ..models.registry import get_model_meta

    model = saved.get("model")
    if model and get_model_meta(model) is not None:
        return model
    if saved.get("model_path") or model:
        return saved.get("model_path") or model
    if saved.get("model_type") and get_model_meta(saved["model_type"]) is not None:
        return saved["model_type"]
    return json.loads((folder / ADAPTER_FILE).read_text()).get("base_model_name_or_path") or None


def agreed_base(runs: Sequence[tuple[str, Run]]) -> Run:
    """The first run, once every (label, run) is checked to share its base model and merged start adapters."""
    label, first = runs[0]
    if first.base is None:
        raise ConfigError(f"{label}: cannot tell its base model (no args.json, and adapter_config.json names none); "
                          "pass --model too")
    if _missing_folder(first.base):
        raise ConfigError(f"{label}: its base model {first.base} (from the run's args.json) is not found from "
                          f"{Path.cwd()}; run from the folder the training ran in, or pass --model DIR")
    for other_label, other in runs[1:]:
        if other.base_key() != first.base_key():
            raise ConfigError(f"{label} and {other_label} were trained on different base models "
                              f"({_describe(first)} vs {_describe(other)}); serve them from separate commands, "
                              "or pass --model to choose the base")
    return first


def _missing_folder(base: str) -> bool:
    """A relative folder name that does not exist here (a registered name or a hub id 'org/name' may)."""
    from ..models.registry import get_model_meta

    path = Path(base).expanduser()
    return not path.is_absolute() and not path.exists() and get_model_meta(base) is None and base.count("/") != 1


def _describe(run: Run) -> str:
    extra = f" + merged {', '.join(run.start_adapters)}" if run.start_adapters else ""
    return f"{run.base}{extra}"


def start_adapters(specs: Sequence[AdapterSpec]) -> tuple[str, ...]:
    """Adapters to merge into the base before attaching `specs` (a dpo run trained from an sft LoRA run); all
    adapters must agree on them."""
    runs = [(f"--adapters {s.item}", read_run(s.path, f"--adapters {s.item}")) for s in specs]
    chains = {run.start_adapters for _, run in runs}
    if len(chains) > 1:
        listed = "; ".join(f"{label}: {', '.join(run.start_adapters) or 'none'}" for label, run in runs)
        raise ConfigError(f"--adapters: these runs start from different merged adapters ({listed}); serve them "
                          "from separate commands")
    return next(iter(chains), ())

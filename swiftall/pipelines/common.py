"""Steps shared by the pipelines: model resolution from configs and from run folders."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from ..models import ModelInfo, resolve_model
from ..utils.errors import ConfigError


def model_info(cfg: Any) -> ModelInfo:
    return resolve_model(cfg.model, cfg.model_type, hub=cfg.hub, revision=cfg.revision)


def run_args(folder: str | Path) -> Optional[dict[str, Any]]:
    """args.json of a run folder, or of the run folder above a checkpoint-N folder."""
    folder = Path(folder)
    for candidate in (folder / "args.json", folder.parent / "args.json"):
        if candidate.is_file():
            return json.loads(candidate.read_text())
    return None


def is_adapter_dir(folder: str | Path) -> bool:
    return (Path(folder) / "adapter_config.json").is_file()


def fill_model_from_run(cfg: Any) -> None:
    """`--adapters DIR` alone: take the base model (and its settings) from the run's args.json."""
    if cfg.model or cfg.model_type or not cfg.adapters:
        return
    first = Path(cfg.adapters[0])
    if not first.is_dir():
        raise ConfigError(f"--adapters {first}: no such folder")
    saved = run_args(first)
    if saved and saved.get("model"):
        cfg.model = saved.get("model_path") or saved["model"]
        cfg.model_type = saved.get("model_type")
        if hasattr(cfg, "system") and cfg.system is None:
            cfg.system = saved.get("system")
        return
    if is_adapter_dir(first):
        base = json.loads((first / "adapter_config.json").read_text()).get("base_model_name_or_path")
        if base:
            cfg.model = base
            return
    raise ConfigError(f"--adapters {first}: cannot tell its base model (no args.json, no adapter_config.json); "
                      "pass --model too")


def split_full_runs(cfg: Any) -> None:
    """A full fine-tuning run folder passed as --adapters is a model, not an adapter."""
    if cfg.adapters and not cfg.model and not is_adapter_dir(cfg.adapters[0]) and \
            (Path(cfg.adapters[0]) / "config.json").is_file():
        cfg.model = cfg.adapters.pop(0)

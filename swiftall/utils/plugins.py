"""The one loader for `--plugin file.py` (ms-swift's `--external_plugins`).

A plugin is a user's Python file that registers whatever it likes: models (swiftall.models.register_model),
datasets (swiftall.data.register_dataset), reward functions (swiftall.train.rlhf.rewards.register_reward, or a
module-level `reward_funcs = {name: fn}`), templates or metrics. Every pipeline calls `load_plugins` first,
before it resolves the model or reads data, and each file runs once per process however often it is named
(registries refuse duplicates, so a second run would fail with "already registered").
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterable, Optional

from .errors import ConfigError

_MODULES: dict[str, ModuleType] = {}   # resolved path -> the module its single run produced


def load_plugins(paths: Optional[Iterable[str | Path]]) -> list[ModuleType]:
    """Run each plugin file once (in the order given) and return their modules, loaded now or earlier."""
    return [load_plugin(path) for path in paths or []]


def load_plugin(path: str | Path) -> ModuleType:
    given = str(path)
    resolved = Path(path).expanduser().resolve()
    key = str(resolved)
    if key in _MODULES:
        return _MODULES[key]
    if not resolved.is_file():
        raise ConfigError(f"--plugin {given}: no such file; give the path of a Python file")
    if resolved.suffix != ".py":
        raise ConfigError(f"--plugin {given}: not a Python file (.py)")
    name = f"swiftall_plugin_{len(_MODULES)}_{resolved.stem}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module  # functions defined in the plugin stay importable (pickling, dataset workers)
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as exc:  # a user's file: say which one failed and how
        sys.modules.pop(name, None)
        raise ConfigError(f"--plugin {given}: failed while loading: {type(exc).__name__}: {exc}") from exc
    _MODULES[key] = module
    return module


def loaded_plugins() -> list[ModuleType]:
    """Every plugin module this process has run, in load order."""
    return list(_MODULES.values())

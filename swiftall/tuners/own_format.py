"""Folders of swiftall's own tuners (adapter, reft): adapter_config.json names the tuner and its settings,
adapter_model.safetensors holds only the tuner's weights. The model's save_pretrained is replaced so checkpoints
and the final save write this small folder instead of the whole model."""
from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any, Callable, Optional

from ..utils.errors import ConfigError

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
KEY = "swiftall_tuner"


def read_config(folder: str | Path) -> dict[str, Any]:
    file = Path(folder) / CONFIG
    return json.loads(file.read_text()) if file.is_file() else {}


def tuner_of(folder: str | Path) -> str:
    """The tuner that wrote an adapter folder: a swiftall tuner's name, or peft's type in lower case (lora, ...)."""
    config = read_config(folder)
    if KEY in config:
        return config[KEY]
    peft_type = str(config.get("peft_type", "lora")).lower()
    return {"prompt_tuning": "prompt", "prefix_tuning": "prefix", "p_tuning": "p_tuning"}.get(peft_type, peft_type)


def install_saver(model: Any, tuner: str, settings: dict[str, Any], owns: Callable[[str], bool],
                  extra: Optional[Callable[[Any], dict[str, Any]]] = None) -> None:
    """Make model.save_pretrained write only the parameters `owns(name)` accepts (and the tensors `extra(model)`
    names), with the tuner's settings."""

    def save_pretrained(self: Any, save_directory: str, state_dict: Any = None, **_: Any) -> None:
        from safetensors.torch import save_file

        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        # the live parameters (a trainer's state_dict may hold parametrized weights under their computed names)
        weights = {k: v.detach().contiguous().cpu() for k, v in self.named_parameters() if owns(k)}
        weights.update({k: v.detach().contiguous().cpu() for k, v in (extra(self) if extra else {}).items()})
        save_file(weights, str(folder / WEIGHTS))
        base = getattr(self.config, "_name_or_path", None)
        (folder / CONFIG).write_text(json.dumps({KEY: tuner, **settings, "base_model_name_or_path": base},
                                                indent=2) + "\n")
        self.config.save_pretrained(folder / "base_config")   # what it was trained on, for reference

    model.save_pretrained = types.MethodType(save_pretrained, model)


def install_loader(model: Any, load: Callable[[str], Any]) -> None:
    """`--resume_from_checkpoint`: SwiftTrainer calls model.swiftall_load_checkpoint(folder) instead of transformers'
    loader (which looks for a whole model's or a peft adapter's files)."""
    model.swiftall_load_checkpoint = load


def load_weights(model: Any, folder: str | Path, owns: Callable[[str], bool],
                 extra: Callable[[str], bool] = lambda name: False) -> dict[str, Any]:
    """Load the tuner's parameters; returns the saved tensors `extra(name)` accepts (not parameters)."""
    from safetensors.torch import load_file

    weights = load_file(str(Path(folder) / WEIGHTS))
    extras = {k: weights.pop(k) for k in list(weights) if extra(k)}
    missing = [k for k in weights if k not in dict(model.named_parameters())]
    if missing:
        raise ConfigError(f"--adapters {folder}: weights {missing[:3]} do not fit this model (was it trained on "
                          "another base? see base_config/ in the folder)")
    model.load_state_dict(weights, strict=False)
    expected = [k for k, _ in model.named_parameters() if owns(k)]
    absent = [k for k in expected if k not in weights]
    if absent:
        raise ConfigError(f"--adapters {folder}: {len(absent)} tuner weights missing (e.g. {absent[0]}); the folder "
                          "is incomplete")
    return extras

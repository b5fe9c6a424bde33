"""Load saved LoRA adapters onto a model (inference, export)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..utils.errors import ConfigError


def attach_adapters(model: Any, adapters: Sequence[str]) -> Any:
    """Load LoRA adapter folders; a 'name=DIR' item names the adapter (default: its folder name)."""
    if not adapters:
        return model
    from peft import PeftModel

    for i, item in enumerate(adapters):
        name, _, folder = item.rpartition("=") if "=" in item else ("", "", item)
        folder_path = Path(folder)
        if not (folder_path / "adapter_config.json").is_file():
            raise ConfigError(f"--adapters {folder}: no adapter_config.json there (is it a LoRA run folder or "
                              "one of its checkpoint-N folders?)")
        name = name or ("default" if i == 0 else f"adapter{i}")
        if i == 0:
            model = PeftModel.from_pretrained(model, str(folder_path), adapter_name=name)
        else:
            model.load_adapter(str(folder_path), adapter_name=name)
    return model.eval()

"""Export tab: `swiftall export` (merge LoRA adapters, and whatever export methods the command offers) as a form."""
from __future__ import annotations

from typing import Any

from ...config import ExportConfig
from ..runs import RunManager
from .command import CommandTab


def export_tab(gr: Any, manager: RunManager, t: Any, defaults: dict[str, Any]) -> CommandTab:
    first = ["adapters", "merge_lora", "output_dir"]
    rest = [n for n in ExportConfig._owners if n not in first]
    tab = CommandTab(gr, ExportConfig, manager, t, names=None, values={"merge_lora": True,
                                                                         "adapters": defaults.get("adapters")})
    tab.form.names = [n for n in first + rest if n in tab.form.names]
    return tab

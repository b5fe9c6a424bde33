"""Evaluate tab: `swiftall eval` as a form, where this swiftall has that command."""
from __future__ import annotations

from typing import Any, Optional

from ..runs import RunManager
from .command import CommandTab


def eval_tab(gr: Any, manager: RunManager, t: Any, defaults: dict[str, Any], available: bool) -> Optional[CommandTab]:
    """None (and a note in the tab) when the command is missing."""
    from ... import config

    cls = getattr(config, "EvalConfig", None)
    if cls is None or not available:
        gr.Markdown(t("not_available", command="eval"))
        return None
    first = ["model", "adapters", "eval_dataset", "eval_limit"]
    names = first + [n for n in cls._owners if n not in first and n not in ("eval_api_key", "eval_list")]
    values = {k: defaults.get(k) for k in ("model", "adapters") if defaults.get(k)}
    return CommandTab(gr, cls, manager, t, names=names, values=values)

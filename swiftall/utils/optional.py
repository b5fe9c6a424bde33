"""One helper for optional dependencies: it names the extra that installs them."""
from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        why = f" for {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"'{module}' is needed{why} but is not installed. Install it with: pip install 'swiftall[{extra}]'"
        ) from exc

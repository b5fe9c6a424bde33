"""A small logger shared by the package."""
from __future__ import annotations

import logging

_CONFIGURED = False


def get_logger(name: str = "swiftall") -> logging.Logger:
    global _CONFIGURED
    if not _CONFIGURED:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[swiftall] %(message)s"))
        root = logging.getLogger("swiftall")
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False
        _CONFIGURED = True
    return logging.getLogger(name if name.startswith("swiftall") else f"swiftall.{name}")

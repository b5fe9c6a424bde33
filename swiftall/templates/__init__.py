"""Canonical messages -> token ids and labels, shared by training, inference and serving."""
from __future__ import annotations

from typing import Any, Optional

from .encode import IGNORE, Encoded, Template, TemplateError, TooLongError

__all__ = ["IGNORE", "Encoded", "Template", "TemplateError", "TooLongError", "get_template"]


def get_template(tokenizer: Any, info: Any = None, system: Optional[str] = None, max_length: Optional[int] = None,
                 truncation_strategy: str = "delete") -> Template:
    """The template for a model: text families use `Template`; multimodal families plug in here."""
    return Template(tokenizer, system=system, max_length=max_length, truncation_strategy=truncation_strategy)

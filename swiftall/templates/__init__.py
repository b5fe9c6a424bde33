"""Canonical messages -> token ids and labels, shared by training, inference and serving."""
from __future__ import annotations

from typing import Any, Optional

from .encode import IGNORE, Encoded, Template, TemplateError, TooLongError

__all__ = ["IGNORE", "Encoded", "Template", "TemplateError", "TooLongError", "get_template"]


def get_template(tokenizer: Any, info: Any = None, system: Optional[str] = None, max_length: Optional[int] = None,
                 truncation_strategy: str = "delete", **media_options: Any) -> Template:
    """The template for a model: text families use `Template`; multimodal families (a tokenizer loaded with its
    processor attached) get `MultimodalTemplate`. `media_options`: max_pixels, min_pixels, fps, max_frames."""
    processor = getattr(tokenizer, "processor", None)
    family = getattr(info, "family", None)
    if processor is not None or (family is not None and family.multimodal):
        from ..utils.errors import ConfigError
        from .multimodal import MultimodalTemplate

        if processor is None:
            name = getattr(info, "name", "this model")
            if family is not None and getattr(tokenizer, "is_fast", True) is False:  # remote-code tokenizers
                raise ConfigError(f"{name}: the {family.name} family brings its own (remote-code) tokenizer that reads "
                                  "media from the prompt; swiftall cannot encode it yet")
            raise ConfigError(f"{name}: a multimodal model needs its processor; load the tokenizer with "
                              "swiftall.models.load_tokenizer")
        return MultimodalTemplate(tokenizer, processor, family=family.name if family else None, system=system,
                                  max_length=max_length, truncation_strategy=truncation_strategy,
                                  grounding=family.grounding if family else None,
                                  **{k: v for k, v in media_options.items() if v is not None})
    return Template(tokenizer, system=system, max_length=max_length, truncation_strategy=truncation_strategy)

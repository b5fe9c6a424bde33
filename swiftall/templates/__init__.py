"""Canonical messages -> token ids and labels, shared by training, inference and serving."""
from __future__ import annotations

from typing import Any, Optional

from .encode import IGNORE, Encoded, Template, TemplateError, TooLongError

__all__ = ["IGNORE", "Encoded", "Template", "TemplateError", "TooLongError", "get_template"]


def get_template(tokenizer: Any, info: Any = None, system: Optional[str] = None, max_length: Optional[int] = None,
                 truncation_strategy: str = "delete", **media_options: Any) -> Template:
    """The template for a model: text families use `Template`; multimodal families (a tokenizer loaded with its
    processor attached) get `MultimodalTemplate`; a family naming a `template_class` (Qwen-VL-Chat, whose remote-code
    tokenizer reads media from the prompt text) gets that class. `media_options`: max_pixels, min_pixels, fps,
    max_frames."""
    processor = getattr(tokenizer, "processor", None)
    family = getattr(info, "family", None)
    if family is not None and family.template_class:
        return template_class(family.template_class)(tokenizer, system=system, max_length=max_length,
                                                     truncation_strategy=truncation_strategy,
                                                     grounding=family.grounding, **media_options)
    if processor is not None or (family is not None and family.multimodal):
        from ..utils.errors import ConfigError
        from .multimodal import MultimodalTemplate

        if processor is None:
            name = getattr(info, "name", "this model")
            raise ConfigError(f"{name}: a multimodal model needs its processor; load the tokenizer with "
                              "swiftall.models.load_tokenizer")
        return MultimodalTemplate(tokenizer, processor, family=family.name if family else None, system=system,
                                  max_length=max_length, truncation_strategy=truncation_strategy,
                                  grounding=family.grounding if family else None,
                                  **{k: v for k, v in media_options.items() if v is not None})
    return Template(tokenizer, system=system, max_length=max_length, truncation_strategy=truncation_strategy)


# Templates for families the processor route cannot encode (ModelFamily.template_class): name -> (module, class)
TEMPLATE_CLASSES = {"qwen_vl_chat": ("qwen_vl_chat", "QwenVLChatTemplate")}


def template_class(name: str) -> type:
    import importlib

    from ..utils.errors import ConfigError

    if name not in TEMPLATE_CLASSES:
        raise ConfigError(f"unknown template class '{name}'; known: {', '.join(sorted(TEMPLATE_CLASSES))}")
    module, cls = TEMPLATE_CLASSES[name]
    return getattr(importlib.import_module(f".{module}", __name__), cls)

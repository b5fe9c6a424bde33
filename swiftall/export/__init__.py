"""Export: LoRA merge, quantization (GPTQ/AWQ/bnb/FP8), GGUF and Ollama files, the check against the original."""
from .merge import merge_lora
from .options import ExportOptions

__all__ = ["merge_lora", "ExportOptions"]

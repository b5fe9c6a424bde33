"""Export: LoRA merge (quantization and GGUF come later)."""
from .merge import merge_lora

__all__ = ["merge_lora"]

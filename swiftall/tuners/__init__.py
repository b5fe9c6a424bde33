"""Building the trainable model: full fine-tuning or LoRA and its variants through peft."""
from .adapters import attach_adapters
from .apply import apply_tuner, count_parameters

__all__ = ["apply_tuner", "attach_adapters", "count_parameters"]

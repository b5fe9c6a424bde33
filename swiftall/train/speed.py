"""The speed options of sft/pt (config/speed.py), applied to the trainable model before the trainer is built."""
from __future__ import annotations

from typing import Any

from ..utils.errors import ConfigError
from ..utils.log import get_logger

logger = get_logger(__name__)


def apply_speed_options(model: Any, cfg: Any) -> None:
    if getattr(cfg, "use_liger_kernel", False):
        use_liger_kernel(model)
    if getattr(cfg, "lean_lora", False):
        from .lean_lora import use_lean_lora

        switched = use_lean_lora(model)
        if switched:
            logger.info(f"lean LoRA dropout on {switched} layers (--lean_lora false for peft's own forward)")


def use_liger_kernel(model: Any) -> None:
    """Liger Kernel's Triton kernels patched into the loaded model (imported only here, only when asked)."""
    import torch

    from ..utils.optional import require

    liger = require("liger_kernel.transformers", "liger", "--use_liger_kernel")
    if not torch.cuda.is_available():
        raise ConfigError("--use_liger_kernel: Liger Kernel runs Triton kernels on a CUDA GPU and this machine has "
                          "none; drop --use_liger_kernel to train on the CPU")
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    liger._apply_liger_kernel_to_instance(model=base)
    # the loss then comes from the patched forward (labels in, fused linear cross-entropy: the logits are never
    # materialised), not from the trainer's head at trained positions
    base.swiftall_fused_loss = True
    logger.info(f"Liger Kernel applied to {type(base).__name__}")

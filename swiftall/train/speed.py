"""The speed options of sft/pt (config/speed.py; --fast_dropout, in the tuner section, for rlhf too), applied to the
trainable model."""
from __future__ import annotations

from typing import Any

from ..utils.errors import ConfigError
from ..utils.log import get_logger

logger = get_logger(__name__)


def apply_speed_options(model: Any, cfg: Any) -> None:
    if getattr(cfg, "use_liger_kernel", False):
        use_liger_kernel(model)
    fast_lora_dropout(model, cfg)
    if getattr(cfg, "lean_lora", False):
        from .lean_lora import use_lean_lora

        switched = use_lean_lora(model)
        if switched:
            logger.info(f"lean LoRA dropout on {switched} layers (--lean_lora false for peft's own forward)")


def fast_lora_dropout(model: Any, cfg: Any) -> None:
    """--fast_dropout (default on): LoRA's dropout draws cheap masks on CPU (train/fast_dropout.py)."""
    if getattr(cfg, "fast_dropout", False):
        from .fast_dropout import use_fast_dropout

        swapped = use_fast_dropout(model)
        if swapped:
            logger.info(f"LoRA dropout on CPU draws 16-bit integer masks in {swapped} layers (--fast_dropout false "
                        "for torch's own draws)")


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

"""Apply the tuner named by --train_type to a loaded model."""
from __future__ import annotations

from typing import Any, Optional

from ..models import ModelFamily
from ..utils.errors import ConfigError
from ..utils.log import get_logger
from .freeze import freeze_parts, multimodal_lora_targets

logger = get_logger(__name__)


def lora_targets(args: Any) -> Any:
    """--target_modules for peft. The default, all-linear, is ms-swift's default too: every linear layer but the
    output head, which for the registered text families is exactly their attention and MLP projections (q/k/v/o
    and gate/up/down, or Phi-3's fused qkv/gate_up), so families keep no target lists of their own."""
    targets = list(args.target_modules)
    if targets == ["all-linear"]:
        return "all-linear"
    return targets


def apply_tuner(model: Any, args: Any, family: Optional[ModelFamily] = None) -> Any:
    if args.train_type == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return freeze_parts(model, args, family)
    if args.train_type == "lora":
        from peft import LoraConfig, get_peft_model

        from .peft_compat import skip_unused_gptq_probe

        skip_unused_gptq_probe()
        config = LoraConfig(r=args.lora_rank, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                            target_modules=multimodal_lora_targets(model, args, family) or lora_targets(args),
                            task_type="CAUSAL_LM",
                            modules_to_save=list(args.modules_to_save) or None, use_dora=args.use_dora,
                            use_rslora=args.use_rslora)
        try:
            return get_peft_model(model, config)
        except ValueError as exc:
            raise ConfigError(f"--target_modules {' '.join(args.target_modules)}: {exc}") from None
    raise ConfigError(f"--train_type {args.train_type}: not supported")


def count_parameters(model: Any) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total

"""Apply the tuner named by --train_type to a loaded model: `full` here, every other tuner through its module in
the registry (registry.py)."""
from __future__ import annotations

import importlib
from typing import Any, Optional

from ..models import ModelFamily
from ..utils.log import get_logger
from .freeze import freeze_parts
from .registry import get_spec

logger = get_logger(__name__)


def lora_targets(args: Any) -> Any:
    """--target_modules for peft. The default, all-linear, is ms-swift's default too: every linear layer but the
    output head, which for the registered text families is exactly their attention and MLP projections (q/k/v/o
    and gate/up/down, or Phi-3's fused qkv/gate_up), so families keep no target lists of their own."""
    targets = list(args.target_modules)
    if targets == ["all-linear"]:
        return "all-linear"
    return targets


def apply_tuner(model: Any, args: Any, family: Optional[ModelFamily] = None, train_rows: Any = None) -> Any:
    """The trainable model for --train_type. `train_rows` (encoded rows) serve initialisations that read data
    (--init_weights eva)."""
    spec = get_spec(args.train_type)
    if spec.name == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return freeze_parts(model, args, family)
    module = importlib.import_module(f"{__package__}.{spec.module}")
    model = module.apply(model, args, family, train_rows)
    from .finish import prepare_final_save

    prepare_final_save(model, args)
    return model


def count_parameters(model: Any) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total

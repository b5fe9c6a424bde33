"""Which parts of a multimodal model train: --freeze_vit, --freeze_aligner, --freeze_llm, and their learning rates.

A family names its encoder ('vit': vision or audio tower), aligner (projector) and language-model module
prefixes. A parameter belongs to the part with the longest matching prefix, so an aligner that lives inside the
vision tower (Qwen2-VL's `visual.merger`) is the aligner, not the tower.
- full training: parameters of frozen parts get requires_grad False;
- LoRA with --target_modules all-linear: LoRA goes on the linear layers of the parts that train (by default the
  language model only), never on the output head.
"""
from __future__ import annotations

from typing import Any, Optional

from ..utils.errors import ConfigError
from ..utils.log import get_logger

logger = get_logger(__name__)
PARTS = ("vit", "aligner", "llm")
_PEFT_PREFIXES = ("base_model.model.",)


def _prefixes(family: Any) -> list[tuple[str, str]]:
    pairs = [(p, "vit") for p in family.vision_tower] + [(p, "aligner") for p in family.aligner]
    pairs += [(p, "llm") for p in family.language_model]
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def part_of(name: str, family: Any) -> Optional[str]:
    """'vit', 'aligner', 'llm' or None for a parameter or module name of the bare or peft-wrapped model."""
    for prefix in _PEFT_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
    for prefix, part in _prefixes(family):
        if name == prefix or name.startswith(prefix + "."):
            return part
    return None


def frozen_parts(args: Any) -> set[str]:
    frozen = {part for part, flag in (("vit", "freeze_vit"), ("aligner", "freeze_aligner"), ("llm", "freeze_llm"))
              if getattr(args, flag, part != "llm")}
    if frozen == set(PARTS):
        raise ConfigError("--freeze_vit, --freeze_aligner and --freeze_llm are all true: nothing would train; set one "
                          "of them to false")
    return frozen


def _is_multimodal(family: Any) -> bool:
    return family is not None and getattr(family, "multimodal", False) and bool(family.language_model)


def freeze_parts(model: Any, args: Any, family: Any) -> Any:
    """Full training: turn off gradients of the frozen parts (a no-op for text models)."""
    if not _is_multimodal(family):
        return model
    frozen = frozen_parts(args)
    counts = {part: 0 for part in PARTS}
    for name, param in model.named_parameters():
        part = part_of(name, family)
        if part in frozen:
            param.requires_grad_(False)
            counts[part] += param.numel()
    if frozen:
        logger.info("frozen: " + ", ".join(f"{part} ({counts[part]:,} parameters)" for part in PARTS if part in frozen))
    return model


def multimodal_lora_targets(model: Any, args: Any, family: Any) -> Optional[list[str]]:
    """Full names of the linear layers LoRA should adapt, or None to keep --target_modules as given."""
    import torch

    if not _is_multimodal(family) or list(args.target_modules) != ["all-linear"]:
        return None
    frozen = frozen_parts(args)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    targets = [name for name, module in model.named_modules()
               if isinstance(module, torch.nn.Linear) and module is not head
               and part_of(name, family) not in (*frozen, None)]
    if not targets:
        raise ConfigError(f"no linear layers to adapt in the parts that train ({', '.join(set(PARTS) - frozen)}); "
                          "name --target_modules explicitly")
    return targets


def param_groups(model: Any, args: Any, family: Any, learning_rate: float, weight_decay: float = 0.0) -> list[dict]:
    """Optimizer parameter groups honouring --vit_lr and --aligner_lr (others use `learning_rate`).

    Biases and norm weights get no weight decay, as in transformers' Trainer."""
    rates = {"vit": getattr(args, "vit_lr", None), "aligner": getattr(args, "aligner_lr", None)}
    groups: dict[tuple[float, bool], list] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = part_of(name, family) if _is_multimodal(family) else None
        lr = rates.get(part) if rates.get(part) is not None else learning_rate
        decay = param.ndim >= 2 and "norm" not in name.lower()
        groups.setdefault((lr, decay), []).append(param)
    return [{"params": params, "lr": lr, "weight_decay": weight_decay if decay else 0.0}
            for (lr, decay), params in groups.items()]

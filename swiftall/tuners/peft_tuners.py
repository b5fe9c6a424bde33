"""The tuners peft provides: lora (DoRA, rsLoRA, PiSSA/OLoRA/LoftQ/EVA/gaussian initialisation), adalora, ia3,
vera, boft, oft, fourierft, loha, lokr, and the prompt-learning ones (prompt, prefix, p_tuning).

`peft_config(args, model, family)` builds the method's config from swiftall's flags (rlhf hands it to TRL);
`apply` wraps the model. Targets: --target_regex (a regular expression over module names), else
--target_modules (all-linear by default: every linear layer but the output head)."""
from __future__ import annotations

from typing import Any, Optional

from ..utils.errors import ConfigError
from ..utils.log import get_logger
from .freeze import multimodal_lora_targets

logger = get_logger(__name__)
PROMPT_LEARNING = ("prompt", "prefix", "p_tuning")
ADALORA_STEPS_PLACEHOLDER = 10_000  # replaced by the trainer's real step count when training starts


def targets(args: Any, model: Any = None, family: Any = None) -> Any:
    """--target_regex, or the named/all-linear --target_modules (a multimodal family's trained parts only)."""
    regex = getattr(args, "target_regex", None)
    if regex:
        return regex
    found = multimodal_lora_targets(model, args, family) if model is not None else None
    if found:
        return found
    names = list(args.target_modules)
    if names != ["all-linear"]:
        return names
    from .quant import quantized_linear_names

    return (quantized_linear_names(model) if model is not None else None) or "all-linear"


def _init_weights(args: Any) -> Any:
    value = getattr(args, "init_weights", None)
    if value is None or value.lower() == "true":
        return True
    if value.lower() == "false":
        return False
    return value.lower()


def _lora(args: Any, target: Any, task_type: str) -> Any:
    from peft import EvaConfig, LoftQConfig, LoraConfig

    init = _init_weights(args)
    extra: dict[str, Any] = {}
    if init == "loftq":
        extra["loftq_config"] = LoftQConfig(loftq_bits=getattr(args, "quant_bits", None) or 4)
    if init == "eva":
        extra["eva_config"] = EvaConfig()
    return LoraConfig(r=args.lora_rank, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                      target_modules=target, task_type=task_type, modules_to_save=_modules(args),
                      use_dora=args.use_dora, use_rslora=args.use_rslora, init_lora_weights=init, **extra)


def _modules(args: Any) -> Optional[list[str]]:
    return list(getattr(args, "modules_to_save", []) or []) or None


def _adalora(args: Any, target: Any, task_type: str) -> Any:
    from peft import AdaLoraConfig

    total = args.max_steps if getattr(args, "max_steps", -1) > 0 else ADALORA_STEPS_PLACEHOLDER
    total = max(total, args.adalora_tinit + args.adalora_tfinal + 1)
    return AdaLoraConfig(init_r=args.adalora_init_r, target_r=args.adalora_target_r, tinit=args.adalora_tinit,
                         tfinal=args.adalora_tfinal, deltaT=args.adalora_deltaT, total_step=total,
                         lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, target_modules=target,
                         task_type=task_type, modules_to_save=_modules(args))


def _simple(args: Any, target: Any, task_type: str) -> Any:
    """ia3, vera, boft, oft, fourierft, loha, lokr."""
    import peft

    name, common = args.train_type, {"target_modules": target, "task_type": task_type,
                                     "modules_to_save": _modules(args)}
    if name == "ia3":   # all-linear: peft's per-architecture default (keys, values, MLP down projection scaled)
        return peft.IA3Config(**{**common, "target_modules": None if target == "all-linear" else target})
    if name == "vera":
        return peft.VeraConfig(r=args.lora_rank, vera_dropout=args.lora_dropout, save_projection=True, **common)
    if name == "boft":
        return peft.BOFTConfig(boft_block_size=args.boft_block_size,
                               boft_n_butterfly_factor=args.boft_n_butterfly_factor, boft_dropout=args.lora_dropout,
                               **common)
    if name == "oft":
        return peft.OFTConfig(r=0, oft_block_size=args.oft_block_size, **common)
    if name == "fourierft":
        return peft.FourierFTConfig(n_frequency=args.fourierft_n_frequency, scaling=args.fourierft_scaling, **common)
    if name == "loha":
        return peft.LoHaConfig(r=args.lora_rank, alpha=args.lora_alpha, **common)
    return peft.LoKrConfig(r=args.lora_rank, alpha=args.lora_alpha, **common)


def _prompt(args: Any, task_type: str) -> Any:
    import peft

    n = args.num_virtual_tokens
    if args.train_type == "prompt":
        return peft.PromptTuningConfig(task_type=task_type, num_virtual_tokens=n)
    if args.train_type == "prefix":
        return peft.PrefixTuningConfig(task_type=task_type, num_virtual_tokens=n)
    return peft.PromptEncoderConfig(task_type=task_type, num_virtual_tokens=n)


def peft_config(args: Any, model: Any = None, family: Any = None, task_type: str = "CAUSAL_LM") -> Any:
    """The peft config of --train_type (None for tuners peft does not provide)."""
    name = args.train_type
    if name in PROMPT_LEARNING:
        return _prompt(args, task_type)
    target = targets(args, model, family)
    if name == "lora":
        return _lora(args, target, task_type)
    if name == "adalora":
        return _adalora(args, target, task_type)
    if name in ("ia3", "vera", "boft", "oft", "fourierft", "loha", "lokr"):
        return _simple(args, target, task_type)
    return None


def apply(model: Any, args: Any, family: Any = None, train_rows: Any = None) -> Any:
    from peft import get_peft_model

    from .peft_compat import skip_unused_gptq_probe

    skip_unused_gptq_probe()
    config = peft_config(args, model, family)
    try:
        wrapped = get_peft_model(model, config)
    except (ValueError, TypeError, RuntimeError) as exc:
        where = f"--target_regex {args.target_regex}" if getattr(args, "target_regex", None) else \
            f"--target_modules {' '.join(args.target_modules)}"
        raise ConfigError(f"--train_type {args.train_type} ({where}): {exc}") from None
    if _init_weights(args) == "eva":
        _eva(wrapped, train_rows)
    if _init_weights(args) in ("pissa", "olora") or str(_init_weights(args)).startswith("pissa_niter_"):
        wrapped.swiftall_convert_on_save = True  # the saved adapter must apply to the original base (finish.py)
    return wrapped


def _eva(model: Any, train_rows: Any, batches: int = 4) -> None:
    """EVA: LoRA A matrices from the singular vectors of the layers' inputs on a few training batches."""
    if not train_rows:
        raise ConfigError("--init_weights eva needs training rows to read the layers' inputs from")
    import torch
    from peft import initialize_lora_eva_weights

    def loader():
        rows = [train_rows[i] for i in range(min(len(train_rows), batches * 2))]
        for i in range(0, len(rows), 2):
            chunk = rows[i:i + 2]
            width = max(len(r["input_ids"]) for r in chunk)
            ids = torch.tensor([list(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in chunk])
            mask = torch.tensor([[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in chunk])
            yield {"input_ids": ids.to(model.device), "attention_mask": mask.to(model.device)}

    initialize_lora_eva_weights(model, list(loader()), show_progress_bar=False)

"""The tuner compatibility check: tuner x quantization x gradient checkpointing x distributed mode x merging,
run on the flags before anything loads. Each refusal names the reason and the nearest choice that works."""
from __future__ import annotations

from typing import Any

from ..utils.errors import ConfigError
from .registry import GALORE, TUNER_SPECS, TunerSpec, get_spec

LORA_ONLY_INITS = ("gaussian", "pissa", "olora", "loftq", "eva")
LORA_ONLY_QUANT = ("hqq", "quanto")  # quantized layers peft adapts with LoRA only (the others' layers stay untouched)
LORA_ONLY_QUANT_TUNERS = ("lora", "prompt", "prefix", "p_tuning", "adapter")


def distributed_mode(args: Any) -> str | None:
    """'deepspeed', 'fsdp', 'ddp' (several processes) or None (one process)."""
    from ..utils.env import local_world_size

    if getattr(args, "deepspeed", None):
        return "deepspeed"
    if getattr(args, "fsdp", None):
        return "fsdp"
    return "ddp" if local_world_size() > 1 else None


def check_compat(args: Any, command: str = "sft") -> TunerSpec:
    """Raise ConfigError for a combination that cannot work; returns the tuner's row."""
    spec = get_spec(args.train_type)
    flag = f"--train_type {spec.name}"
    _check_quant(args, spec, flag)
    if getattr(args, "gradient_checkpointing", False) and not spec.grad_ckpt:
        raise ConfigError(f"{flag} with --gradient_checkpointing true: its interventions hook hidden states that "
                          "recomputation would run twice; set --gradient_checkpointing false (or use --train_type "
                          "lora, which supports it)")
    mode = distributed_mode(args)
    if mode and mode not in spec.distributed:
        raise ConfigError(f"{flag} under {mode}: not supported (works with {', '.join(spec.distributed)}); "
                          f"{'run one process per model or use --train_type lora' if mode != 'ddp' else 'use lora'}")
    if command == "rlhf" and not spec.rlhf:
        usable = ", ".join(n for n, s in TUNER_SPECS.items() if s.rlhf)
        raise ConfigError(f"swiftall rlhf {flag}: alignment trainers take {usable}; train {spec.name} with "
                          "swiftall sft, or choose one of those")
    if not spec.packing:
        for name in ("packing", "padding_free"):
            if getattr(args, name, None):
                raise ConfigError(f"{flag} with --{name} true: virtual tokens are prepended to each row, so rows "
                                  f"cannot be concatenated; add --{name} false")
        if hasattr(args, "padding_free"):
            args.padding_free = False   # unset means on for registered families: padded batches here
    _check_options(args, spec, flag, mode)
    if command == "rlhf" and _init(args) in LORA_ONLY_INITS:
        raise ConfigError(f"swiftall rlhf --init_weights {_init(args)}: TRL builds the adapter itself, and this "
                          "initialisation needs swiftall's own (data passes or weight conversion on save); train "
                          "with it in swiftall sft, then align with --sft_model_path")
    return spec


def _check_quant(args: Any, spec: TunerSpec, flag: str) -> None:
    method = getattr(args, "quant_method", None)
    if not method:
        return
    if not spec.quantized:
        trains = ", ".join(n for n, s in TUNER_SPECS.items() if s.quantized)
        raise ConfigError(f"--quant_method {method} with {flag}: {spec.name} cannot train over quantized weights; "
                          f"use one of {trains} (e.g. --train_type lora: QLoRA), or drop --quant_method")
    if method in LORA_ONLY_QUANT and spec.name not in LORA_ONLY_QUANT_TUNERS:
        raise ConfigError(f"--quant_method {method} with {flag}: peft wraps {method}'s quantized layers for LoRA "
                          f"only; use --train_type lora (or --quant_method bnb, which {spec.name} takes)")
    init = _init(args)
    if init in ("pissa", "olora", "loftq") or init.startswith("pissa_niter_"):
        raise ConfigError(f"--init_weights {init} with --quant_method {method}: {init} rewrites the base weights "
                          "from a full-precision copy; drop --quant_method, or keep the default --init_weights")


def _init(args: Any) -> str:
    init = str(getattr(args, "init_weights", None) or "").lower()
    return "pissa" if init.startswith("pissa_niter_") else init


def _check_options(args: Any, spec: TunerSpec, flag: str, mode: str | None) -> None:
    init = _init(args)
    if init and init not in ("true", "false") and spec.name != "lora":
        raise ConfigError(f"--init_weights {init} is a LoRA initialisation; use it with --train_type lora")
    if init == "loftq" and not _cuda():
        raise ConfigError("--init_weights loftq needs a GPU (peft's LoftQ quantizes on CUDA); on a CPU use "
                          "--init_weights pissa, or QLoRA with --quant_method bnb --quant_bits 4")
    if getattr(args, "lorap_lr_ratio", None) and spec.name != "lora":
        raise ConfigError(f"--lorap_lr_ratio (LoRA+) sets the learning rate of LoRA's B matrices; use it with "
                          f"--train_type lora, not {spec.name}")
    if getattr(args, "lorap_lr_ratio", None) and (getattr(args, "vit_lr", None) or getattr(args, "aligner_lr", None)):
        raise ConfigError("--lorap_lr_ratio with --vit_lr/--aligner_lr: both set the optimizer's groups; keep one")
    if getattr(args, "use_dora", False) and spec.name != "lora":
        raise ConfigError(f"--use_dora is a LoRA variant; use it with --train_type lora, not {spec.name}")
    if getattr(args, "target_regex", None) and spec.saves != "adapter":
        raise ConfigError(f"--target_regex picks the layers of peft tuners; {flag} does not take it")
    if getattr(args, "use_galore", False):
        if spec.name not in ("full", "lisa"):
            raise ConfigError(f"--use_galore with {flag}: GaLore projects the gradients of full weights; use "
                              "--train_type full (or drop --use_galore for adapter tuners)")
        if mode and mode not in GALORE.distributed:
            raise ConfigError(f"--use_galore under {mode}: GaLore's optimizer keeps per-layer projections that "
                              f"{mode} would shard; run without {mode} (plain DDP works)")


def merge_refusal(tuner: str, folder: str) -> str | None:
    """Why an adapter folder trained with `tuner` cannot be merged, or None when it can."""
    spec = TUNER_SPECS.get(tuner)
    if spec is None or spec.mergeable:
        return None
    return (f"--adapters {folder}: a {tuner} adapter cannot be merged into the base weights ({spec.summary}); "
            f"load it with swiftall infer/deploy --adapters {folder} instead, or train lora to export a merged model")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()

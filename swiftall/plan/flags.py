"""From a command's config (plan, sft, rlhf, infer: the same flag names) and a machine to a planned Setting, and the
machine a plan is for."""
from __future__ import annotations

from typing import Any, Optional

from ..config.distributed import zero_stage
from ..utils.errors import ConfigError
from .machine import Machine, detect_machine, given_machine
from .setting import Setting


def machine_for(device: str = "auto", memory_gb: Optional[float] = None) -> Machine:
    """--device/--memory_gb: this machine detected, or one described (a GPU name or cuda needs --memory_gb unless
    this machine has a GPU)."""
    if memory_gb is not None:
        if device in ("auto", "cuda"):
            detected = detect_machine()
            kind = "cuda" if device == "cuda" or detected.accelerator else "cpu"
            name = detected.accelerator.name if kind == "cuda" and detected.accelerator else ""
            return given_machine(kind, memory_gb, name)
        return given_machine("cpu" if device == "cpu" else "cuda", memory_gb, "" if device == "cpu" else device)
    machine = detect_machine(with_gpus=device != "cpu")
    if device not in ("auto", "cpu") and machine.accelerator is None:
        raise ConfigError(f"--device {device}: this machine has no GPU; give its memory too, e.g. --device {device} "
                          "--memory_gb 24, to plan for another machine")
    return machine


def resolved_dtype(torch_dtype: str, machine: Machine) -> str:
    if torch_dtype != "auto":
        return torch_dtype
    if machine.device == "cpu":
        return "float32"
    return "bfloat16" if machine.bf16 else "float16"


def setting_from(cfg: Any, machine: Machine, task: Optional[str] = None) -> Setting:
    """The Setting of a config's flags; fields a command does not have take the planner's defaults."""
    task = task or getattr(cfg, "plan_task", None) or cfg.command
    rlhf_type = getattr(cfg, "rlhf_type", "dpo") or "dpo"
    if task == "dpo":
        task, rlhf_type = "rlhf", "dpo"
    if task == "deploy":
        task = "infer"
    training = task in ("sft", "pt", "rlhf")
    quant = (getattr(cfg, "quant_bits", None) or 4) if getattr(cfg, "quant_method", None) == "bnb" else None
    zero = zero_stage(getattr(cfg, "deepspeed", None), getattr(cfg, "fsdp", None))
    return Setting(
        task=task, rlhf_type=rlhf_type, train_type=getattr(cfg, "train_type", "lora"),
        lora_rank=getattr(cfg, "lora_rank", 8), quant_bits=quant,
        dtype=resolved_dtype(getattr(cfg, "torch_dtype", "auto"), machine),
        batch=getattr(cfg, "per_device_train_batch_size", 1) if training else getattr(cfg, "max_batch_size", 16),
        length=getattr(cfg, "max_length", None) or 2048, new_tokens=getattr(cfg, "max_new_tokens", 512),
        checkpointing=bool(getattr(cfg, "gradient_checkpointing", False)), optim=getattr(cfg, "optim", "adamw_torch"),
        zero_stage=zero, nproc=(getattr(cfg, "nproc_per_node", None) or 1) * (getattr(cfg, "nnodes", None) or 1),
        device=machine.device,
        media_items=getattr(cfg, "media_per_row", 0), attn=getattr(cfg, "attn_impl", None) or "sdpa")

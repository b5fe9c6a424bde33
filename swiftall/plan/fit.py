"""What fits a memory budget: the nearest setting to one that does not (fewest changes, the least taken away), and
the recommended precision and method for a machine, each with its one-line reason."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Optional

from .machine import Machine
from .memory import Plan, make_plan
from .setting import Setting
from .spec import ModelSpec

HEADROOM = 0.9  # a plan fits when its peak is at most this fraction of the budget (fragmentation, other processes)


@dataclass(frozen=True)
class Choice:
    setting: Setting
    plan: Plan
    reasons: tuple[str, ...]


def fits(plan: Plan, budget_gib: float) -> bool:
    return plan.peak_gib <= HEADROOM * budget_gib


def _changes(s: Setting) -> list[tuple[str, Callable[[Setting], Optional[Setting]]]]:
    """Single steps that lower memory, in the order a user would give things up."""
    steps: list[tuple[str, Callable[[Setting], Optional[Setting]]]] = []
    if s.training:
        steps.append(("--gradient_checkpointing true", lambda x: None if x.checkpointing else x.with_(
            checkpointing=True)))
        steps.append(("--train_type lora", lambda x: x.with_(train_type="lora") if x.train_type == "full" else None))
        steps.append(("QLoRA: --quant_method bnb --quant_bits 4", lambda x: x.with_(
            quant_bits=4, train_type="lora") if not x.quant_bits else None))
    if s.device != "cpu" and s.dtype == "float32":
        steps.append(("--torch_dtype bfloat16", lambda x: x.with_(dtype="bfloat16")))
    batch_flag = "--per_device_train_batch_size" if s.training else "--max_batch_size"
    steps.append((f"{batch_flag} halved", lambda x: x.with_(batch=x.batch // 2) if x.batch > 1 else None))
    steps.append(("--max_length halved", lambda x: x.with_(length=x.length // 2) if x.length >= 256 else None))
    return steps


def nearest_fit(spec: ModelSpec, s: Setting, budget_gib: float, depth: int = 4) -> Optional[Choice]:
    """The setting with the fewest changes that fits; among equals, the one using the most of the budget."""
    steps = _changes(s)
    for n in range(1, depth + 1):
        found: list[Choice] = []
        for combo in itertools.combinations_with_replacement(range(len(steps)), n):
            current, names = s, []
            for index in combo:
                changed = steps[index][1](current)
                if changed is None:
                    break
                current, names = changed, names + [steps[index][0]]
            else:
                plan = make_plan(spec, current)
                if fits(plan, budget_gib):
                    found.append(Choice(current, plan, tuple(names)))
        if found:
            return max(found, key=lambda c: c.plan.peak_bytes)
    return None


def smallest_need(spec: ModelSpec, s: Setting) -> Plan:
    """The least memory this model can run with here: LoRA or QLoRA (whichever is less; on CPUs bitsandbytes holds
    the unquantized weights too), batch 1, 256 tokens, checkpointing."""
    small = s.with_(batch=1, length=min(s.length, 256), **({"train_type": "lora", "checkpointing": True}
                                                          if s.training else {}))
    return min(make_plan(spec, small), make_plan(spec, small.with_(quant_bits=4)), key=lambda p: p.peak_bytes)


def recommend(spec: ModelSpec, machine: Machine, task: str = "sft", length: int = 2048) -> Optional[Choice]:
    """Precision and method for this model on this machine: the first of full, LoRA, QLoRA that fits (training),
    or the weights in their compute dtype (inference, which loads no quantized base), with why."""
    device = machine.device
    dtype = "bfloat16" if machine.bf16 else ("float16" if device != "cpu" else "float32")
    why_dtype = {"bfloat16": "bf16: this GPU supports it, half of float32's memory with float32's range",
                 "float16": "fp16: this GPU has no bf16", "float32": "fp32: CPUs train and infer in float32"}[dtype]
    base = Setting(task=task, dtype=dtype, device=device, batch=1, length=length,
                   checkpointing=device != "cpu", train_type="lora")
    if base.training:
        options = [(base.with_(train_type="full"), "full fine-tuning fits: every weight trains"),
                   (base, "LoRA: full fine-tuning does not fit (weights + gradients + AdamW states)"),
                   (base.with_(quant_bits=4), "QLoRA nf4: 16-bit LoRA does not fit, 4-bit weights do"),
                   (base.with_(quant_bits=4, checkpointing=True), "QLoRA nf4 with gradient checkpointing: the "
                    "smallest training setting at this length")]
    else:
        options = [(base.with_(batch=4), f"{dtype} weights fit, with 4 requests generated together")]
    for setting, why in options:
        plan = make_plan(spec, setting)
        if fits(plan, machine.budget_gib):
            return Choice(setting, plan, (why_dtype, why))
    return None

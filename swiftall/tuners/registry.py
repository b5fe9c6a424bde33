"""The tuners --train_type names, what each combines with, and the module that builds it.

One small dataclass per tuner; `compat.py` checks a run's flags against these rows before anything loads, and
`swiftall tuners` prints them. A tuner's module has `apply(model, args, family) -> model`."""
from __future__ import annotations

from dataclasses import dataclass

DISTRIBUTED = ("ddp", "deepspeed", "fsdp")


@dataclass(frozen=True)
class TunerSpec:
    name: str
    module: str                     # swiftall.tuners.<module> holds apply()
    summary: str
    mergeable: bool                 # export --merge_lora folds it into the base weights
    quantized: bool                 # trains on a base loaded with --quant_method (QLoRA-style)
    grad_ckpt: bool                 # works with --gradient_checkpointing
    distributed: tuple[str, ...]    # multi-process modes it works under
    saves: str                      # "adapter" (a peft folder), "model" (a plain model folder), "swiftall adapter"
    rlhf: bool = False              # usable by swiftall rlhf (through TRL's peft_config)
    packing: bool = True            # works with packed / padding-free rows


def _peft(name: str, summary: str, mergeable: bool = True, quantized: bool = True, rlhf: bool = True,
          packing: bool = True, distributed: tuple[str, ...] = DISTRIBUTED) -> TunerSpec:
    return TunerSpec(name, "peft_tuners", summary, mergeable, quantized, True, distributed, "adapter", rlhf, packing)


TUNER_SPECS: dict[str, TunerSpec] = {spec.name: spec for spec in (
    TunerSpec("full", "full", "all weights (with --use_galore: GaLore's projected optimizer)", False, False, True,
              DISTRIBUTED, "model", rlhf=True),
    _peft("lora", "low-rank A/B beside each target (--use_dora, --use_rslora, --init_weights, --lorap_lr_ratio)"),
    _peft("adalora", "LoRA whose ranks are pruned to a budget while training", rlhf=False,
          distributed=("ddp",)),
    _peft("ia3", "learned scales of keys, values and MLP inputs"),
    _peft("vera", "shared frozen random A/B, learned per-layer scaling vectors"),
    _peft("boft", "butterfly-factored orthogonal rotation of each weight", quantized=False),
    _peft("oft", "block-diagonal orthogonal rotation of each weight", quantized=False),
    _peft("fourierft", "a few learned spectral coefficients per weight", quantized=False),
    _peft("loha", "low-rank Hadamard product update", quantized=False),
    _peft("lokr", "low-rank Kronecker product update", quantized=False),
    _peft("prompt", "learned virtual tokens before the input", mergeable=False, rlhf=False, packing=False),
    _peft("prefix", "learned keys/values prepended in every layer", mergeable=False, rlhf=False, packing=False),
    _peft("p_tuning", "virtual tokens from a small prompt encoder", mergeable=False, rlhf=False, packing=False),
    TunerSpec("reft", "reft", "low-rank interventions on hidden states (pyreft's LoReFT)", False, False, False,
              ("ddp",), "swiftall adapter"),
    TunerSpec("llamapro", "llamapro", "new zero-output blocks interleaved, only they train; saves a plain model",
              False, False, True, DISTRIBUTED, "model"),
    TunerSpec("adapter", "adapter", "bottleneck adapters after each MLP (down, act, up; residual)", False, True,
              True, DISTRIBUTED, "swiftall adapter"),
    TunerSpec("lisa", "lisa", "full training of K random layers at a time, switched every S steps", False, False,
              True, ("ddp",), "model"),
)}

# GaLore is an optimizer over full training (--use_galore), not a --train_type; its row in the printed matrix
GALORE = TunerSpec("galore", "galore", "--use_galore: full training, gradients projected to low rank", False, False,
                   True, ("ddp",), "model")


def get_spec(name: str) -> TunerSpec:
    from ..utils.errors import ConfigError

    spec = TUNER_SPECS.get(name)
    if spec is None:
        raise ConfigError(f"--train_type {name}: not a tuner; choose one of {', '.join(TUNER_SPECS)} "
                          "(swiftall tuners lists them)")
    return spec


def is_peft_saved(name: str) -> bool:
    return TUNER_SPECS[name].saves == "adapter" if name in TUNER_SPECS else False

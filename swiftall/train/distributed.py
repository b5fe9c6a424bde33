"""The distributed flags as TrainingArguments: process-group settings, DeepSpeed ZeRO configs (shipped presets whose
"auto" values transformers fills from the run), and FSDP2 configs.

accelerate only switches to FSDP on accelerator devices: on CPU (MULTI_CPU) an FSDP plugin is ignored and the run
would silently be plain DDP. swiftall shards sft/pt runs itself there (train/fsdp.py, `shards_itself`) and refuses
--fsdp on CPU for the other trainers (`check_engine`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from ..config.distributed import FSDP_PRESETS, ZERO_PRESETS, zero_stage
from ..utils.env import launched_world
from ..utils.errors import ConfigError
from ..utils.optional import require

DS_CONFIGS = Path(__file__).parent / "ds_configs"
CPU_FSDP_TUNERS = ("full", "lora")  # what swiftall's own fully_shard (train/fsdp.py) saves and resumes
FSDP_MODES = {  # --fsdp preset -> transformers' fsdp_config (FSDP2)
    "full_shard": {"reshard_after_forward": True},
    "shard_grad_op": {"reshard_after_forward": False},
    "offload": {"reshard_after_forward": True, "cpu_offload": True},
}


def distributed_arguments(cfg: Any, on_cpu: bool) -> dict[str, Any]:
    """Keyword arguments of TrainingArguments for --ddp_*, --deepspeed and --fsdp."""
    kwargs: dict[str, Any] = {"ddp_timeout": getattr(cfg, "ddp_timeout", 1800)}
    world = launched_world()
    if world is not None and world[1] > 1:  # a backend given to one process would start an empty process group
        backend = getattr(cfg, "ddp_backend", None) or ("gloo" if on_cpu else None)  # accelerate takes mpi if built
        if backend is not None:
            kwargs["ddp_backend"] = backend
    # transformers' default (True for peft models) costs a graph walk per step and warns on every rank
    kwargs["ddp_find_unused_parameters"] = bool(getattr(cfg, "ddp_find_unused_parameters", None))
    deepspeed, fsdp = getattr(cfg, "deepspeed", None), getattr(cfg, "fsdp", None)
    check_engine(cfg, on_cpu)
    if deepspeed:
        from .outputs import resolve_resume
        from .universal import with_universal

        resume = resolve_resume(getattr(cfg, "resume_from_checkpoint", None))  # on another number of processes:
        kwargs["deepspeed"] = with_universal(deepspeed_config(deepspeed), resume, world[1] if world else 1)  # converted
    if fsdp and not on_cpu:  # on CPU build_trainer applies fully_shard itself (train/fsdp.py)
        kwargs["fsdp"] = True
        kwargs["fsdp_config"] = fsdp_config(fsdp)
    return kwargs


def shards_itself(cfg: Any, on_cpu: bool) -> bool:
    """True when swiftall applies fully_shard itself: --fsdp on CPU in a causal-LM sft/pt run (build_trainer)."""
    return bool(on_cpu and getattr(cfg, "fsdp", None) and getattr(cfg, "command", None) in ("sft", "pt")
                and getattr(cfg, "task_type", "causal_lm") == "causal_lm")


def cpu_reshard_after_forward(cfg: Any) -> bool:
    """full_shard/offload (and a JSON file unless it says otherwise) free each layer's gathered weights after its
    forward; shard_grad_op keeps them until the backward (ZeRO-2's trade)."""
    return bool(fsdp_config(cfg.fsdp).get("reshard_after_forward", True))


def check_engine(cfg: Any, on_cpu: bool) -> None:
    deepspeed, fsdp = getattr(cfg, "deepspeed", None), getattr(cfg, "fsdp", None)
    if deepspeed:
        require("deepspeed", "deepspeed", f"--deepspeed {deepspeed}")
    train_type = getattr(cfg, "train_type", "lora")
    if shards_itself(cfg, on_cpu) and train_type not in CPU_FSDP_TUNERS:
        raise ConfigError(f"--fsdp {fsdp} on CPU with --train_type {train_type}: swiftall shards "
                          f"{' and '.join(CPU_FSDP_TUNERS)} training itself on CPU (tested against DDP), not this tuner "
                          "yet (some save from their live weights, which would be shards here): drop --fsdp (DDP) "
                          "or use --deepspeed zero2/zero3")
    if shards_itself(cfg, on_cpu) and getattr(cfg, "eval_dataset", None):
        raise ConfigError(f"--fsdp {fsdp} with --eval_dataset: scoring by generation during training runs on rank 0 "
                          "alone, and a sharded model needs every process in each forward pass; drop --eval_dataset "
                          "and score the saved model with swiftall eval")
    if deepspeed and getattr(cfg, "rlhf_type", None) == "ppo" and zero_stage(deepspeed) == 3:
        raise ConfigError(f"--deepspeed {deepspeed} (ZeRO-3) with --rlhf_type ppo: not supported yet (DeepSpeed cannot "
                          "fill its 'auto' ZeRO-3 bucket sizes from PPO's policy-and-value module, and rollouts "
                          "sampled on each process under ZeRO-3 are untested); use --deepspeed zero2 or plain DDP, "
                          "which run PPO on several processes")
    if fsdp and on_cpu and not shards_itself(cfg, on_cpu):
        raise ConfigError(f"--fsdp {fsdp} on CPU: swiftall shards sft/pt causal-LM runs itself, and accelerate "
                          "runs FSDP only on GPUs, so this trainer would silently train as plain DDP here (every "
                          "process holding the whole model); drop --fsdp for DDP, or use --deepspeed zero3 (ZeRO-3 "
                          "shards the same states and runs on CPU with gloo)")


def deepspeed_config(value: str) -> dict[str, Any]:
    """A shipped preset (zero0..zero3, zero2_offload, zero3_offload) or the user's JSON file, as a dict."""
    path = DS_CONFIGS / f"{value}.json" if value in ZERO_PRESETS else Path(value).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--deepspeed {value}: cannot read {path} ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--deepspeed {value}: {path} line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--deepspeed {value}: {path} holds {type(data).__name__}; a DeepSpeed config is an object")
    return data


def fsdp_config(value: str) -> dict[str, Any]:
    """A preset (FSDP_MODES) or the user's JSON file; always FSDP2 (torch's fully_shard)."""
    if value in FSDP_PRESETS:
        data = dict(FSDP_MODES[value])
    else:
        try:
            data = json.loads(Path(value).expanduser().read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"--fsdp {value}: cannot read an FSDP JSON config ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"--fsdp {value}: expected a JSON object of fsdp_config keys")
    kind = str(data.get("state_dict_type", "FULL_STATE_DICT")).upper()
    if "FULL" not in kind:
        raise ConfigError(f"--fsdp {value}: state_dict_type {kind}; swiftall saves FULL_STATE_DICT (gathered to rank "
                          "0), so every checkpoint is a plain Hugging Face folder that loads and resumes on any "
                          "number of processes: leave state_dict_type out")
    version = int(data.get("version", data.get("fsdp_version", 2)))
    if version != 2:
        raise ConfigError(f"--fsdp {value}: FSDP version {version}; swiftall runs FSDP2 (fully_shard): set "
                          "\"version\": 2 or leave it out")
    return {"version": 2, "auto_wrap_policy": "TRANSFORMER_BASED_WRAP", "state_dict_type": "FULL_STATE_DICT",
            **data}

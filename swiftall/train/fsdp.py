"""FSDP2 where accelerate does not shard: `--fsdp full_shard|shard_grad_op` on CPU (gloo).

accelerate only switches to FSDP on accelerators; on CPU it would wrap the model in DDP and every process would hold
the whole model. Here swiftall applies torch's `fully_shard` itself, to each decoder layer (the classes the model
names in `_no_split_modules`, as TRANSFORMER_BASED_WRAP does) and then to the transformers model as the root group
(embeddings, final norm, head): every parameter becomes a DTensor of which each process holds 1/world of the rows.

The Trainer then hosts the sharded model as it is (`CpuFsdpTrainerMixin`): the accelerator prepares it without the
DDP wrapper, gradients are reduce-scattered by FSDP2 itself, the saved model is the full state dict gathered to rank 0
(`get_model_state_dict(full_state_dict=True, cpu_offload=True)`, a plain Hugging Face folder), and a checkpoint's
optimizer state is gathered the same way (optimizer.pt holds whole tensors), so checkpoints are not sharded and
resume on any number of processes: there is nothing for `swiftall export --consolidate` to do."""
from __future__ import annotations

import os
from typing import Any

from ..utils.errors import ConfigError
from ..utils.log import get_logger

logger = get_logger(__name__)
FULL = {"full_state_dict": True, "cpu_offload": True}


def inner_model(model: Any) -> Any:
    """The transformers model under a peft wrapper (the root FSDP group), or the model itself."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def decoder_layers(model: Any) -> list:
    """The model's repeated blocks: modules whose class the model lists in `_no_split_modules`."""
    base = inner_model(model)
    names = set(getattr(base, "_no_split_modules", None) or [])
    layers = [m for m in base.modules() if type(m).__name__ in names and m is not base]
    if not layers:
        raise ConfigError(f"--fsdp on CPU: {type(base).__name__} names no decoder layer class (_no_split_modules "
                          f"{sorted(names) or 'empty'}), so there is nothing to shard layer by layer; train without "
                          "--fsdp (DDP) or with --deepspeed zero3")
    return layers


def shard_model(model: Any, reshard_after_forward: bool, world_size: int) -> Any:
    """fully_shard each decoder layer, then the root; the process group must exist (TrainingArguments made it)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    if not dist.is_initialized():
        raise ConfigError("--fsdp on CPU needs a process group: launch with --nproc_per_node N (torchrun)")
    if getattr(model, "swiftall_convert_on_save", False):
        raise ConfigError("--fsdp on CPU with a LoRA init converted on save (pissa, olora): the conversion reads the "
                          "live weights, which are shards here; drop --fsdp (DDP) or use another --init_lora_weights")
    mesh = init_device_mesh("cpu", (world_size,))
    layers = decoder_layers(model)
    for layer in layers:
        fully_shard(layer, mesh=mesh, reshard_after_forward=reshard_after_forward)
    fully_shard(inner_model(model), mesh=mesh, reshard_after_forward=reshard_after_forward)
    _check_all_sharded(model)
    held, total = local_share(model)
    logger.info(f"FSDP2 on CPU: fully_shard applied by swiftall to {len(layers)} decoder layers and the root over "
                f"{world_size} process{'es' if world_size != 1 else ''} (gloo); this process holds {held:,} of {total:,} parameter values "
                f"({100 * held / max(total, 1):.1f}%), not DDP")
    return model


def _check_all_sharded(model: Any) -> None:
    """A trained parameter outside the sharded modules would get no gradient reduction: refused, never silent."""
    from torch.distributed.tensor import DTensor

    loose = [n for n, p in model.named_parameters() if p.requires_grad and not isinstance(p, DTensor)]
    if loose:
        raise ConfigError(f"--fsdp on CPU: trained parameters outside the model's layers ({', '.join(loose[:3])}) "
                          "would not be sharded nor reduced across processes; drop --fsdp (DDP)")


def local_share(model: Any) -> tuple[int, int]:
    """(values this process holds, values of the whole model), counted on the DTensor shards."""
    from torch.distributed.tensor import DTensor

    held = total = 0
    for param in model.parameters():
        total += param.numel()
        held += param.to_local().numel() if isinstance(param, DTensor) else param.numel()
    return held, total


def is_sharded(model: Any) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(inner_model(model), FSDPModule)


def full_state_dict(model: Any) -> dict:
    """Every process takes part; rank 0 gets whole CPU tensors, the others an empty dict. A tied weight (lm_head
    sharing the embeddings) is kept under its first name only, as save_pretrained writes it unsharded."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(model, options=StateDictOptions(**FULL))
    seen: set = set()
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in seen:
            state.pop(name, None)
        seen.add(id(param))
    return state


class CpuFsdpTrainerMixin:
    """Hosts a model sharded by `shard_model` in transformers' Trainer; inert for any other model."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.cpu_fsdp = is_sharded(self.model)
        if self.cpu_fsdp:
            prepare = self.accelerator.prepare_model
            # the model reduces its own gradients: prepared (autocast, compile) without the DDP wrapper
            self.accelerator.prepare_model = lambda model, device_placement=None, evaluation_mode=False: prepare(
                model, device_placement=False, evaluation_mode=True)

    def save_model(self, output_dir: Any = None, _internal_call: bool = False) -> None:
        if not self.cpu_fsdp:
            return super().save_model(output_dir, _internal_call=_internal_call)
        state_dict = full_state_dict(self.model)  # a collective: every rank, rank 0 writes
        self._save(output_dir or self.args.output_dir, state_dict=state_dict)

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        if not self.cpu_fsdp:
            return super()._save_optimizer_and_scheduler(output_dir)
        import torch
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        state = get_optimizer_state_dict(self.model, self.optimizer, options=StateDictOptions(**FULL))
        if self.args.should_save:  # torch's own layout (parameters by index): any run resumes from it
            torch.save(indexed(state), os.path.join(output_dir, "optimizer.pt"))
            torch.save(self.lr_scheduler.state_dict(), os.path.join(output_dir, "scheduler.pt"))

    def _load_optimizer_and_scheduler(self, checkpoint: Any) -> None:
        if not self.cpu_fsdp or checkpoint is None:
            return super()._load_optimizer_and_scheduler(checkpoint)
        import torch
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        state = torch.load(os.path.join(checkpoint, "optimizer.pt"), map_location="cpu", weights_only=True)
        state = named(state, self.model, self.optimizer)
        set_optimizer_state_dict(self.model, self.optimizer, state, options=StateDictOptions(full_state_dict=True))
        self.lr_scheduler.load_state_dict(torch.load(os.path.join(checkpoint, "scheduler.pt"), weights_only=True))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        if not self.cpu_fsdp:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        load_full_weights(self.model, resume_from_checkpoint)


def indexed(state: dict) -> dict:
    """A full optimizer state keyed by parameter names (torch.distributed.checkpoint's) -> torch's own layout, whose
    parameters are numbered across the groups in order (what a DDP or one-process run saves and loads)."""
    number: dict = {}
    groups = []
    for group in state["param_groups"]:
        ids = [number.setdefault(name, len(number)) for name in group["params"]]
        groups.append({**group, "params": ids})
    return {"state": {number[name]: value for name, value in state["state"].items()}, "param_groups": groups}


def named(state: dict, model: Any, optimizer: Any) -> dict:
    """torch's layout back to names, numbering this optimizer's parameters as torch.optim does."""
    names = {id(p): n for n, p in model.named_parameters()}
    order = [names[id(p)] for group in optimizer.param_groups for p in group["params"]]
    if len(state["param_groups"]) != len(optimizer.param_groups) or len(order) < len(state["state"]):
        raise ConfigError("--resume_from_checkpoint: the checkpoint's optimizer.pt holds other parameter groups "
                          "than this run trains (another --train_type or targets?)")
    groups, start = [], 0
    for saved, group in zip(state["param_groups"], optimizer.param_groups):
        groups.append({**saved, "params": order[start:start + len(group["params"])]})
        start += len(group["params"])
    return {"state": {order[i]: value for i, value in state["state"].items()}, "param_groups": groups}


def load_full_weights(model: Any, folder: str) -> None:
    """A checkpoint's whole weights (model.safetensors, or a LoRA adapter_model.safetensors) into the shards."""
    from pathlib import Path

    from safetensors.torch import load_file
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    path = Path(folder)
    files = sorted(path.glob("model*.safetensors")) or sorted(path.glob("adapter_model.safetensors"))
    if not files:
        raise ConfigError(f"--resume_from_checkpoint {folder}: no model.safetensors or adapter_model.safetensors "
                          "to resume an FSDP run from")
    saved: dict = {}
    for file in files:
        saved.update(load_file(str(file)))
    names = {_saved_name(k): k for k in model.state_dict()}
    state = {names[k]: v for k, v in saved.items() if k in names}
    if len(state) != len(saved):
        unknown = sorted(set(saved) - set(names))[:3]
        raise ConfigError(f"--resume_from_checkpoint {folder}: weights {unknown} match no parameter of this model")
    set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True, strict=False))


def _saved_name(key: str) -> str:
    """A parameter's name as saved: peft drops the adapter name ('lora_A.default.weight' -> 'lora_A.weight')."""
    return key.replace(".default.", ".")


def shard_if_asked(model: Any, cfg: Any, args: Any) -> Any:
    """build_trainer's hook: --fsdp on CPU (sft/pt) shards here, before the Trainer and its optimizer exist."""
    from .distributed import cpu_reshard_after_forward, shards_itself

    if not shards_itself(cfg, on_cpu=args.device.type == "cpu"):  # args.device starts the process group
        return model
    if cfg.fsdp == "offload":
        logger.info("--fsdp offload on CPU: the states are in CPU memory already; sharding as full_shard")
    return shard_model(model, cpu_reshard_after_forward(cfg), args.world_size)

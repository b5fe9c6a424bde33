"""The distributed section of the training commands: how many processes on how many machines (the CLI re-launches
itself under torchrun with these), the process-group settings, and the sharding engine (DeepSpeed ZeRO or FSDP2).
Unset launch flags fall back to ms-swift's environment variables (NPROC_PER_NODE, NNODES, NODE_RANK, MASTER_ADDR,
MASTER_PORT), read in utils/env.py."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..utils.errors import ConfigError
from .base import Section, arg

ZERO_PRESETS = ("zero0", "zero1", "zero2", "zero3", "zero2_offload", "zero3_offload")
FSDP_PRESETS = ("full_shard", "shard_grad_op", "offload")
BACKENDS = ("nccl", "gloo", "mpi", "ccl", "hccl", "xccl")
LAUNCH_FLOORS = (("nproc_per_node", 1), ("nnodes", 1), ("node_rank", 0), ("master_port", 1))  # flag, least value


@dataclass
class DistributedSection(Section):
    name = "distributed"
    title = "distributed training (torchrun, DeepSpeed, FSDP)"
    nproc_per_node: Optional[int] = arg(None, "Processes per machine (one per GPU); > 1 re-launches the command "
                                        "under torchrun (default: $NPROC_PER_NODE, else 1)")
    nnodes: Optional[int] = arg(None, "Machines taking part (default: $NNODES, else 1); run the same command on each "
                                "with its own --node_rank")
    node_rank: Optional[int] = arg(None, "This machine's index, 0..nnodes-1 (default: $NODE_RANK, else 0)")
    master_addr: Optional[str] = arg(None, "Address of the node_rank 0 machine (default: $MASTER_ADDR, else "
                                     "127.0.0.1)")
    master_port: Optional[int] = arg(None, "Port on the master for the rendezvous (default: $MASTER_PORT, else a "
                                     "free port on one machine, 29500 on several)")
    ddp_backend: Optional[str] = arg(None, "Process-group backend (default: nccl on GPUs, gloo on CPU)",
                                     choices=BACKENDS)
    ddp_timeout: int = arg(1800, "Seconds a collective may wait for the other processes before the run fails")
    ddp_find_unused_parameters: Optional[bool] = arg(None, "DDP: look for parameters that got no gradient each step "
                                                     "(default false: slower; set true when some trained layers are "
                                                     "skipped in a forward pass)")
    deepspeed: Optional[str] = arg(None, "DeepSpeed ZeRO: zero0..zero3 (zero1 shards optimizer states, zero2 also "
                                   "gradients, zero3 also weights), zero2_offload/zero3_offload (states in CPU "
                                   "memory), or a DeepSpeed JSON file", metavar="STAGE|FILE.json")
    fsdp: Optional[str] = arg(None, "FSDP2 (torch fully_shard): full_shard (like ZeRO-3), shard_grad_op (like "
                              "ZeRO-2), offload (full_shard with states in CPU memory), or an FSDP JSON config "
                              "file; accelerate shards on GPUs, swiftall itself on CPU (sft/pt; each decoder layer "
                              "and the root)", metavar="MODE|FILE.json")
    stall_timeout: Optional[float] = arg(None, "Seconds without a completed training step after which each rank "
                                         "writes its Python stacks to RUN/stall-rank<N>.txt and names itself in "
                                         "the log (default: half of --ddp_timeout with several processes, off "
                                         "with one; 0: off)", metavar="SECONDS")

    def check(self) -> None:
        for name, low in LAUNCH_FLOORS:
            value = getattr(self, name)
            if value is not None and value < low:
                raise ConfigError(f"--{name} must be at least {low}, got {value}")
        if self.master_port is not None and self.master_port > 65535:
            raise ConfigError(f"--master_port must be a TCP port (1-65535), got {self.master_port}")
        if self.nnodes is not None and self.node_rank is not None and self.node_rank >= self.nnodes:
            raise ConfigError(f"--node_rank {self.node_rank} with --nnodes {self.nnodes}: ranks are 0.."
                              f"{self.nnodes - 1}")
        if self.ddp_timeout < 1:
            raise ConfigError(f"--ddp_timeout must be at least 1 second, got {self.ddp_timeout}")
        if self.stall_timeout is not None and not 0 <= self.stall_timeout < self.ddp_timeout:
            raise ConfigError(f"--stall_timeout {self.stall_timeout:g}: give 0 (off) or fewer seconds than "
                              f"--ddp_timeout {self.ddp_timeout}, so the stacks are written before the collective "
                              "timeout ends the run")
        if self.deepspeed and self.fsdp:
            raise ConfigError(f"--deepspeed {self.deepspeed} and --fsdp {self.fsdp}: choose one sharding engine "
                              "(DeepSpeed ZeRO-3 and FSDP full_shard divide the same states)")
        _check_preset("deepspeed", self.deepspeed, ZERO_PRESETS)
        _check_preset("fsdp", self.fsdp, FSDP_PRESETS)


def _check_preset(flag: str, value: Optional[str], presets: tuple[str, ...]) -> None:
    if value is None or value in presets:
        return
    if value.endswith(".json"):
        if not Path(value).expanduser().is_file():
            raise ConfigError(f"--{flag} {value}: no such file; give an existing JSON file or one of "
                              f"{', '.join(presets)}")
        return
    import difflib

    close = [p for p in presets if p.startswith(value)] or difflib.get_close_matches(value, presets, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise ConfigError(f"--{flag} {value}: not one of {', '.join(presets)}{hint}, nor a .json file")


def zero_stage(deepspeed: Optional[str], fsdp: object = None) -> int:
    """The ZeRO stage a run's states are divided like (FSDP full sharding counts as 3), for the memory planner."""
    if fsdp:
        return 2 if fsdp == "shard_grad_op" else 3
    if not deepspeed:
        return 0
    if deepspeed in ZERO_PRESETS:
        return int(deepspeed[4])
    import json

    try:
        stage = json.loads(Path(deepspeed).expanduser().read_text()).get("zero_optimization", {}).get("stage", 0)
    except (OSError, ValueError, AttributeError):
        return 0
    return stage if isinstance(stage, int) else 0

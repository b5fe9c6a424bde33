"""Multi-process training: `NPROC_PER_NODE=2 swiftall sft ...` (ms-swift's variables) or `swiftall sft
--nproc_per_node 2 ...` re-launches the same command under torchrun (`torch.distributed.run`, through
cli/torchrun.py); a process that torchrun, `accelerate launch` or `deepspeed` already started (LOCAL_RANK/WORLD_SIZE
set) runs as it is.

The flags are checked once, here, before any process starts; every process gets the same --output_dir (a run folder
named by the time would differ between processes started a second apart)."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Optional

from ..config.distributed import LAUNCH_FLOORS
from ..utils import env
from ..utils.errors import ConfigError

TRAINING_COMMANDS = ("sft", "pt", "rlhf", "dpo")
DEFAULT_PORT = 29500  # torchrun's own default, for runs across machines


@dataclass
class LaunchPlan:
    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: Optional[int] = None

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes


def rank_label() -> str:
    """' (rank 1 of 2)' inside a multi-process run, '' otherwise: error messages say which process failed."""
    world = env.launched_world()
    return f" (rank {world[0]} of {world[1]})" if world and world[1] > 1 else ""


def maybe_relaunch(command: str, argv: list[str], config_cls: Any) -> Optional[int]:
    """The exit code of a torchrun launch, or None when this process should run the command itself."""
    if command not in TRAINING_COMMANDS:
        return None
    world = env.launched_world()
    if world is not None:
        _inside_launch(config_cls, argv, world)
        return None
    cfg = config_cls.from_any(argv)  # every flag checked once, before N processes start
    plan = launch_plan(cfg, env.launch_request())
    _check_resume_world(cfg.resume_from_checkpoint, plan.world_size, bool(cfg.deepspeed))
    if plan.world_size == 1 and not (cfg.deepspeed or cfg.fsdp):  # the engines need a launcher's variables
        return None
    _check_engine(cfg)
    extra = _output_dir_args(cfg, plan)
    cmd = torchrun_command(plan, command, [*argv, *extra])
    print(f"[swiftall] launching {plan.nproc_per_node} process(es) on node {plan.node_rank} of {plan.nnodes} "
          f"under torchrun", file=sys.stderr)
    code = subprocess.call(cmd, env=env.launch_environment(plan.nproc_per_node))
    if code != 0:
        run_dir = cfg.output_dir or (extra[1] if extra else None) or str(cfg.resume_from_checkpoint)
        print(f"swiftall {command}: error: the distributed run failed (exit {code}); the first message naming a "
              f"rank above is the cause. {_resume_hint(run_dir)}", file=sys.stderr)
    return code


def _resume_hint(run_dir: str) -> str:
    from pathlib import Path

    from ..train.outputs import latest_checkpoint

    folder = Path(run_dir)
    folder = folder.parent if folder.name.startswith("checkpoint-") else folder
    latest = latest_checkpoint(folder) if folder.is_dir() else None
    if latest is None:
        return f"No complete checkpoint in {folder} yet."
    return f"Last complete checkpoint: {latest}; continue with --resume_from_checkpoint {folder}"


def launch_plan(cfg: Any, variables: dict[str, str]) -> LaunchPlan:
    """Flags first, then NPROC_PER_NODE/NNODES/NODE_RANK/MASTER_ADDR/MASTER_PORT, then single-process defaults."""
    plan = LaunchPlan()
    for name, low in LAUNCH_FLOORS:  # the same floors as the flags' (config/distributed.py)
        value = getattr(cfg, name)
        if value is None and name.upper() in variables:
            value = _int_variable(name.upper(), variables[name.upper()], low)
        if value is not None:
            setattr(plan, name, value)
    plan.master_addr = cfg.master_addr or variables.get("MASTER_ADDR") or plan.master_addr
    if plan.node_rank >= plan.nnodes:
        raise ConfigError(f"node rank {plan.node_rank} with {plan.nnodes} node(s): ranks are 0..{plan.nnodes - 1} "
                          "(--node_rank / NODE_RANK)")
    if plan.nnodes > 1 and plan.master_port is None:
        plan.master_port = DEFAULT_PORT
    return plan


def _int_variable(name: str, text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"environment variable {name}={text!r}: expected a whole number (or unset it)") from None
    if value < low:
        raise ConfigError(f"environment variable {name}={value}: must be at least {low}")
    return value


def torchrun_command(plan: LaunchPlan, command: str, argv: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "swiftall.cli.torchrun", f"--nproc_per_node={plan.nproc_per_node}"]
    if plan.nnodes == 1 and plan.master_port is None:
        cmd.append("--standalone")  # a free port on this machine
    else:
        cmd += [f"--nnodes={plan.nnodes}", f"--node_rank={plan.node_rank}", f"--master_addr={plan.master_addr}",
                f"--master_port={plan.master_port}"]
    return [*cmd, "-m", "swiftall.cli.main", command, *argv]


def _check_resume_world(resume: Optional[str], world_size: int, deepspeed: bool) -> None:
    """A DeepSpeed ZeRO checkpoint holds one optimizer shard per process: on another number of processes it is
    converted here, once, before any process starts, to DeepSpeed's universal checkpoint (train/universal.py). A DDP
    checkpoint holds whole states and resumes on any number as it is."""
    if not resume:
        return
    from ..train.outputs import resolve_resume
    from ..train.universal import ensure_universal, needs_universal, zero_shards

    checkpoint = resolve_resume(resume)
    if not needs_universal(checkpoint, world_size):
        return
    if not deepspeed:
        raise ConfigError(f"--resume_from_checkpoint {resume}: a DeepSpeed ZeRO checkpoint (saved by "
                          f"{zero_shards(checkpoint)} processes); resume it with the same --deepspeed setting, on any "
                          "number of processes, or start a new run from its weights (--model CHECKPOINT_FOLDER)")
    ensure_universal(checkpoint, world_size)


def _check_engine(cfg: Any) -> None:
    """DeepSpeed installed, FSDP on a device where it shards: refused here rather than in every process."""
    if not (cfg.deepspeed or cfg.fsdp):
        return
    import torch

    from ..train.distributed import check_engine

    check_engine(cfg, on_cpu=not torch.cuda.is_available())


def _output_dir_args(cfg: Any, plan: LaunchPlan) -> list[str]:
    if cfg.output_dir or cfg.resume_from_checkpoint:
        return []
    if plan.nnodes > 1:
        raise ConfigError("a run on several machines needs --output_dir: a folder every node reaches (shared "
                          "storage), so all nodes write one run")
    from ..train.outputs import default_output_dir

    return ["--output_dir", str(default_output_dir(cfg.model))]


def _inside_launch(config_cls: Any, argv: list[str], world: tuple[int, int]) -> None:
    """Started by torchrun/accelerate/deepspeed: only rank 0 talks at info level; all ranks need one run folder."""
    rank, size = world
    if size <= 1:
        return
    if rank != 0:
        from ..utils.log import get_logger

        get_logger().setLevel("WARNING")
    cfg = config_cls.from_any(argv)
    if not (cfg.output_dir or cfg.resume_from_checkpoint):
        raise ConfigError(f"started by a launcher with {size} processes but without --output_dir: each process would "
                          "name its own run folder by the time; pass --output_dir (or launch with swiftall's own "
                          "--nproc_per_node, which picks one folder for all)")

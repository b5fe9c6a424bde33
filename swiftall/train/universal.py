"""DeepSpeed ZeRO checkpoints resumed on another number of processes, through DeepSpeed's universal checkpoint.

A ZeRO checkpoint holds one optimizer shard per process, so it loads only on as many processes as saved it. DeepSpeed's
own converter (`deepspeed.checkpoint.ds_to_universal`) rewrites the shards as one file per parameter (weights and both
Adam moments), which its engine loads on any number of processes when the config says `"checkpoint":
{"load_universal": true}`. swiftall converts once, in the launching process, before any rank starts; the result is
kept beside the shards (`global_stepN_universal` and the tag file `latest_universal`) and reused by later resumes.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

from ..utils.errors import ConfigError

TAG_FILE = "latest_universal"


def zero_tag(checkpoint: Path) -> Optional[str]:
    """The global_stepN folder DeepSpeed wrote into this checkpoint (its `latest` file), or None."""
    latest = checkpoint / "latest"
    if latest.is_file():
        tag = latest.read_text().strip()
        if (checkpoint / tag).is_dir():
            return tag
    steps = [p.name for p in checkpoint.glob("global_step*") if p.name[len("global_step"):].isdigit()]
    return max(steps, key=lambda name: int(name[len("global_step"):])) if steps else None


def zero_shards(checkpoint: Path) -> int:
    """How many processes saved this checkpoint's ZeRO optimizer shards (0: not a ZeRO checkpoint)."""
    tag = zero_tag(checkpoint)
    return len(list((checkpoint / tag).glob("*zero_pp_rank_*_optim_states.pt"))) if tag else 0


def needs_universal(checkpoint: Optional[Path], world_size: int) -> bool:
    shards = zero_shards(checkpoint) if checkpoint is not None else 0
    return bool(shards) and shards != world_size


def has_universal(checkpoint: Path) -> bool:
    tag_file = checkpoint / TAG_FILE
    return tag_file.is_file() and (checkpoint / tag_file.read_text().strip() / "zero").is_dir()


def _universal_name(checkpoint: Path) -> str:
    return f"{zero_tag(checkpoint)}_universal"


def ensure_universal(checkpoint: Path, world_size: int) -> Path:
    """Convert this ZeRO checkpoint (once) so that `world_size` processes can resume it; returns the universal
    folder."""
    if has_universal(checkpoint):
        return checkpoint / (checkpoint / TAG_FILE).read_text().strip()
    tag, target = zero_tag(checkpoint), checkpoint / _universal_name(checkpoint)
    staging = checkpoint / f".converting-{target.name}"
    shutil.rmtree(staging, ignore_errors=True)
    print(f"[swiftall] {checkpoint} was saved by {zero_shards(checkpoint)} processes and resumes on {world_size}: "
          "converting it to DeepSpeed's universal checkpoint (once)", file=sys.stderr)
    cmd = [sys.executable, "-m", "deepspeed.checkpoint.ds_to_universal", "--input_folder", str(checkpoint / tag),
           "--output_folder", str(staging), "--num_extract_workers", "1", "--num_merge_workers", "1",
           # transformers' checkpoints carry no universal_checkpoint_info (Megatron's tensor-parallel patterns):
           # with no tensor or pipeline parallelism the converter's default for it is exact
           "--inject_missing_state"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise ConfigError(f"--resume_from_checkpoint {checkpoint}: DeepSpeed could not convert its ZeRO shards for "
                          f"{world_size} process(es): {done.stderr.strip()[-600:]}\nResume on "
                          f"{zero_shards(checkpoint)} processes instead (--nproc_per_node), or start a new run from "
                          f"its weights (--model {checkpoint})")
    staging.rename(target)
    (checkpoint / TAG_FILE).write_text(target.name)
    return target


def with_universal(config: dict, checkpoint: Optional[Path], world_size: int) -> dict:
    """This DeepSpeed config, told to load the universal checkpoint when a resume on `world_size` processes needs it
    (the config's own "checkpoint" entries kept)."""
    if not needs_universal(checkpoint, world_size):
        return config
    if not has_universal(checkpoint):
        raise ConfigError(f"--resume_from_checkpoint {checkpoint}: saved by {zero_shards(checkpoint)} processes, "
                          f"resumed on {world_size}, and not converted yet. Launch with swiftall's own "
                          "--nproc_per_node / NPROC_PER_NODE (it converts before the processes start), or convert it "
                          f"yourself: {sys.executable} -m deepspeed.checkpoint.ds_to_universal --input_folder "
                          f"{checkpoint / str(zero_tag(checkpoint))} --output_folder "
                          f"{checkpoint / _universal_name(checkpoint)} --inject_missing_state, then write that "
                          f"folder's name into {checkpoint / TAG_FILE}")
    return {**config, "checkpoint": {**config.get("checkpoint", {}), "load_universal": True}}

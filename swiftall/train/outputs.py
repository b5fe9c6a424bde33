"""The run folder: where it is, refusing to overwrite, finding checkpoints to resume.

Nothing is written into the folder until the run's inputs are checked: the pipelines call `check_output_dir` first
(before anything loads) and `create_output_dir` once the data has passed validation, so a run that fails its checks
leaves no folder behind and its corrected rerun is not refused as "not empty".
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from ..utils.errors import ConfigError
from ..utils.log import get_logger
from .checkpoints import CKPT, checkpoints, incomplete_reason, interrupted_saves

logger = get_logger(__name__)
NOT_RESULTS = {"args.json"}  # written before training starts: a folder holding only these has nothing to lose


def default_output_dir(model_name: str) -> Path:
    stem = Path(model_name.rstrip("/")).name.replace(".gguf", "") or "model"
    return Path("output") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def latest_checkpoint(folder: Path) -> Optional[Path]:
    """The newest complete checkpoint-N of a run folder (incomplete ones are skipped, with a warning)."""
    for saving in interrupted_saves(folder):
        logger.warning(f"{saving.name} in {folder} is a checkpoint save that was interrupted; ignoring it")
    for _, path in checkpoints(folder):
        reason = incomplete_reason(path)
        if reason is None:
            return path
        logger.warning(f"{path} is incomplete ({reason}: its save was interrupted); skipping it")
    return None


def resolve_resume(value: Optional[str]) -> Optional[Path]:
    """A checkpoint-N folder, or a run folder -> its latest complete checkpoint."""
    if not value:
        return None
    path = Path(value)
    if not path.is_dir():
        raise ConfigError(f"--resume_from_checkpoint {value}: no such folder")
    if CKPT.match(path.name) and not any(CKPT.match(p.name) for p in path.iterdir()):
        reason = incomplete_reason(path)
        if reason is None:
            return path
        raise ConfigError(f"--resume_from_checkpoint {value}: this checkpoint is incomplete ({reason}: its save was "
                          f"interrupted); pass the run folder {path.parent} to resume from its last complete "
                          "checkpoint")
    latest = latest_checkpoint(path)
    if latest is not None:
        return latest
    raise ConfigError(f"--resume_from_checkpoint {value}: holds no checkpoint-N folder that is complete (with "
                      "trainer_state.json and the model weights); start a new run")


def check_output_dir(output_dir: Optional[str], overwrite: bool, resume: Optional[Path]) -> None:
    """The checks on --output_dir, writing nothing: not a file; a folder with results only when resuming into it or
    with --overwrite_output_dir true."""
    if output_dir is None and resume is None:
        return  # a fresh folder named after the model and the time
    path = Path(output_dir) if output_dir else resume.parent
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--output_dir {path}: a file of that name exists; name a folder")
    if not path.is_dir() or overwrite or not _holds_results(path):
        return
    if resume is not None and resume.resolve().parent == path.resolve():
        return
    latest = latest_checkpoint(path)
    if latest is not None:
        raise ConfigError(f"--output_dir {path} is not empty: it holds an earlier run (last complete checkpoint: "
                          f"{latest.name}). To continue that run, pass --resume_from_checkpoint {path}; to start over "
                          "in this folder, pass --overwrite_output_dir true; or choose a new --output_dir")
    raise ConfigError(f"--output_dir {path} is not empty; choose a new folder or pass --overwrite_output_dir true")


def output_dir_for(output_dir: Optional[str], model_name: str, resume: Optional[Path]) -> Path:
    if output_dir:
        return Path(output_dir)
    return resume.parent if resume is not None else default_output_dir(model_name)


def create_output_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def prepare_output_dir(output_dir: Optional[str], model_name: str, overwrite: bool, resume: Optional[Path]) -> Path:
    """check_output_dir + create_output_dir, for callers with nothing to validate in between."""
    check_output_dir(output_dir, overwrite, resume)
    return create_output_dir(output_dir_for(output_dir, model_name, resume))


def say_how_to_resume(output_dir: Path) -> None:
    """After Ctrl-C in training: where the run can continue from, and the flag that does it."""
    latest = latest_checkpoint(output_dir)
    if latest is None:
        logger.warning(f"interrupted before the first checkpoint (--save_steps); nothing in {output_dir} to resume")
        return
    logger.warning(f"interrupted; {latest.name} is the last complete checkpoint: rerun the same command with "
                   f"--resume_from_checkpoint {output_dir} to continue from it")


def _holds_results(path: Path) -> bool:
    return any(p.name not in NOT_RESULTS for p in path.iterdir())

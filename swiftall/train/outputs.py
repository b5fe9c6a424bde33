"""The run folder: where it is, refusing to overwrite, finding checkpoints to resume."""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Optional

from ..utils.errors import ConfigError

CKPT = re.compile(r"^checkpoint-(\d+)$")


def default_output_dir(model_name: str) -> Path:
    stem = Path(model_name.rstrip("/")).name.replace(".gguf", "") or "model"
    return Path("output") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def latest_checkpoint(folder: Path) -> Optional[Path]:
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := CKPT.match(p.name))]
    return max(found)[1] if found else None


def resolve_resume(value: Optional[str]) -> Optional[Path]:
    """A checkpoint-N folder, or a run folder -> its latest checkpoint."""
    if not value:
        return None
    path = Path(value)
    if not path.is_dir():
        raise ConfigError(f"--resume_from_checkpoint {value}: no such folder")
    latest = latest_checkpoint(path)
    if latest is not None:
        return latest
    if (path / "trainer_state.json").is_file() and CKPT.match(path.name):
        return path
    raise ConfigError(f"--resume_from_checkpoint {value}: holds no checkpoint-N folder with trainer_state.json")


def prepare_output_dir(output_dir: Optional[str], model_name: str, overwrite: bool, resume: Optional[Path]) -> Path:
    if output_dir:
        path = Path(output_dir)
    elif resume is not None:
        path = resume.parent
    else:
        path = default_output_dir(model_name)
    if path.exists() and any(path.iterdir()) and not overwrite:
        resuming_here = resume is not None and resume.resolve().parent == path.resolve()
        if not resuming_here:
            raise ConfigError(f"--output_dir {path} is not empty; choose a new folder or pass "
                              "--overwrite_output_dir true")
    path.mkdir(parents=True, exist_ok=True)
    return path

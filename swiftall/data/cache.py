"""The encoded-data cache: Arrow folders (datasets' save_to_disk) keyed by tokenizer, template, max_length,
truncation and the data itself, so a crashed or repeated run never re-encodes unchanged data."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator, Optional

from ..utils import env
from ..utils.log import get_logger
from .report import DataReport

logger = get_logger(__name__)
DATA_VERSION = "swiftall-data-2"   # bump when encoding changes in a way that invalidates old caches (2: tools inlined)


def _sha(*parts: Any) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, default=str).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:20]


def template_fingerprint(template: Any) -> str:
    """Everything about the template and tokenizer that changes encoded ids or labels."""
    tok = template.tokenizer
    custom = getattr(template, "fingerprint", None)
    backend = getattr(tok, "backend_tokenizer", None)
    vocab = backend.to_str() if backend is not None else str(sorted(tok.get_vocab().items())[:1000])
    return _sha(f"{type(template).__module__}.{type(template).__qualname__}", template.system, template.max_length,
                template.truncation_strategy, getattr(tok, "chat_template", None), vocab,
                getattr(tok, "special_tokens_map", {}), custom() if callable(custom) else custom)


def encoding_key(data_fingerprint: Any, template: Any, task: str, strict: bool) -> str:
    return _sha(DATA_VERSION, data_fingerprint, template_fingerprint(template), task, strict)


def cache_root(args: Any) -> Path:
    explicit = getattr(args, "dataset_cache_dir", None)
    return Path(explicit).expanduser() if explicit else env.cache_root() / "datasets"


@contextlib.contextmanager
def quiet_progress(quiet: bool = True) -> Iterator[None]:
    """Silence datasets' progress bars for steps that take no time worth watching."""
    import datasets

    was_off = datasets.are_progress_bars_disabled()
    if quiet and not was_off:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if quiet and not was_off:
            datasets.enable_progress_bars()


def load_cached(folder: Path) -> Optional[tuple[Any, Any, DataReport]]:
    """(train, val, report) from a cache folder, or None when it is absent or incomplete."""
    if not (folder / "report.json").is_file():
        return None
    from datasets import load_from_disk

    try:
        train = load_from_disk(str(folder / "train"))
        val = load_from_disk(str(folder / "val")) if (folder / "val").is_dir() else []
        report = DataReport.from_dict(json.loads((folder / "report.json").read_text()))
    except Exception as exc:  # a half-written or foreign folder: rebuild it
        logger.warning(f"ignoring unreadable data cache {folder}: {type(exc).__name__}: {exc}")
        return None
    return train, val, report


def save_cached(folder: Path, train: Any, val: Any, report: DataReport, meta: dict[str, Any]) -> bool:
    """Write atomically (a temporary folder renamed into place); False when the folder cannot be written."""
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with quiet_progress():
            train.save_to_disk(str(tmp / "train"))
            if val is not None and len(val):
                val.save_to_disk(str(tmp / "val"))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
        report.save(tmp / "report.json")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
        return True
    except OSError as exc:
        logger.warning(f"could not write the data cache {folder} ({exc}); the next run encodes again")
        shutil.rmtree(tmp, ignore_errors=True)
        return False

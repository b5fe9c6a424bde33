"""swiftall prepare: validate every row, write canonical samples and (with --model) the encoded Arrow cache.

The output folder holds train.jsonl / val.jsonl (canonical rows, each with the file:line it came from),
swiftall_prepared.json (what was prepared, and a fingerprint of the rows), encoded/<key>/ (the Arrow cache that
`sft --dataset DIR` loads when tokenizer, template, max_length and rows are unchanged), report.json and
report.txt.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from ..config import PrepareConfig
from ..data.build import build_datasets, canonical_datasets, check_nonempty
from ..data.cache import cache_root
from ..data.read import PREPARED_MARKER, is_prepared
from ..data.registry import load_extensions
from ..data.report import DataReport
from ..utils.errors import ConfigError
from ..utils.log import get_logger

logger = get_logger(__name__)


def prepare_main(config: Any = None) -> dict[str, Any]:
    """Returns a summary: output_dir, rows per split, the report (and the cache folder with --model)."""
    cfg = PrepareConfig.from_any(config)
    out = _output_dir(cfg)
    load_extensions(cfg)
    report = DataReport()
    work = cache_root(cfg) / f"work-prepare-{os.getpid()}-{int(time.time())}" if cfg.streaming else None
    train, val = canonical_datasets(cfg, report, cfg.task, work_dir=work)
    check_nonempty(report, train, "--dataset")
    digest = hashlib.sha256()
    counts = {"train": _write(out / "train.jsonl", train, digest)}
    if val is not None and len(val):
        counts["val"] = _write(out / "val.jsonl", val, digest)
    marker = {"version": 1, "name": cfg.dataset_name, "dataset": cfg.dataset, "val_dataset": cfg.val_dataset,
              "task": cfg.task, "rows": counts, "fingerprint": digest.hexdigest()[:24],
              "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    (out / PREPARED_MARKER).write_text(json.dumps(marker, indent=2, ensure_ascii=False) + "\n")
    if work is not None:
        shutil.rmtree(work, ignore_errors=True)
    summary: dict[str, Any] = {"output_dir": str(out), "rows": counts, "name": cfg.dataset_name}
    report.kept = sum(counts.values())
    if cfg.model or cfg.model_type:
        built = _encode(cfg, out)
        report = _merge(report, built.report)
        summary["cache_dir"] = str(built.cache_dir) if built.cache_dir else None
        summary["rows"] = {"train": len(built.train), "val": len(built.val)}
    report.save(out / "report.json")
    text = report.summary() + ("\ndropped rows:\n  " + report.problem_lines(50) if report.problems else "")
    (out / "report.txt").write_text(text + "\n")
    print(text)
    print(f"prepared data in {out}: train {summary['rows']['train']} rows, val {summary['rows'].get('val', 0)}; "
          f"train on it with: swiftall sft --dataset {out} ...")
    summary["report"] = report.to_dict()
    return summary


def _output_dir(cfg: PrepareConfig) -> Path:
    out = Path(cfg.output_dir).expanduser()
    if out.exists() and any(out.iterdir()):
        if not cfg.overwrite_output_dir:
            raise ConfigError(f"--output_dir {out} is not empty; pass --overwrite_output_dir true to replace it")
        if is_prepared(out):
            shutil.rmtree(out)
        elif out.is_dir():
            for name in ("train.jsonl", "val.jsonl", "encoded", "report.json", "report.txt"):
                if (out / name).exists():
                    raise ConfigError(f"--output_dir {out} holds {name} but was not written by swiftall prepare; "
                                      "pick another folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _write(path: Path, dataset: Any, digest: Any) -> int:
    """Canonical rows as JSONL, each with its source (file:line); the digest covers every byte written."""
    n = 0
    with open(path, "w", encoding="utf-8") as handle:
        for batch in dataset.iter(batch_size=1000):
            for source, text in zip(batch["source"], batch["sample"]):
                line = json.dumps({**json.loads(text), "source": source}, ensure_ascii=False) + "\n"
                digest.update(line.encode())
                handle.write(line)
                n += 1
    return n


def _encode(cfg: PrepareConfig, out: Path) -> Any:
    """Encode the prepared rows exactly as `sft --dataset DIR` will, writing the cache into DIR/encoded."""
    from ..models import load_tokenizer
    from ..templates import get_template
    from .common import model_info

    info = model_info(cfg)
    tokenizer = load_tokenizer(info, cfg.trust_remote_code)
    template = get_template(tokenizer, info, system=cfg.system, max_length=cfg.max_length,
                            truncation_strategy=cfg.truncation_strategy)
    enc = copy.copy(cfg)
    enc.dataset, enc.val_dataset, enc.split_dataset_ratio = [str(out)], [], 0.0
    enc.columns, enc.model_name, enc.model_author = {}, [], []  # already applied to the canonical rows
    enc.load_from_cache_file = False
    enc._write_cache = True
    enc.lazy_tokenize = False if cfg.lazy_tokenize is None else cfg.lazy_tokenize
    return build_datasets(enc, template, "pt" if cfg.task == "pt" else "sft", log=False)


def _merge(first: DataReport, second: DataReport) -> DataReport:
    """Rows dropped while reading plus rows dropped while encoding, with the encoding's token statistics."""
    second.read = first.read
    second.dropped = first.dropped + second.dropped
    second.problems = first.problems + second.problems
    return second

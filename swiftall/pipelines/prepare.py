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
from collections import Counter
from pathlib import Path
from typing import Any

from ..config import PrepareConfig
from ..data.build import build_datasets, canonical_datasets, check_nonempty
from ..data.cache import cache_root
from ..data.read import PREPARED_MARKER, is_prepared
from ..data.registry import load_extensions
from ..data.validate import MEDIA
from ..data.report import DataReport
from ..utils.errors import ConfigError
from ..utils.log import get_logger

logger = get_logger(__name__)
MEDIA_FIELDS = tuple(MEDIA)


def prepare_main(config: Any = None) -> dict[str, Any]:
    """Returns a summary: output_dir, rows per split, the report (and the cache folder with --model)."""
    cfg = PrepareConfig.from_any(config)
    cfg.dataset = cfg.all_datasets()  # --jsonl_path files are read with --dataset
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
        if built.report.n_dropped:  # rows dropped while encoding (too long, nothing trained) leave the files too
            _keep_encoded_rows(out, built, marker)
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
                row = absolute_media(json.loads(text))
                line = json.dumps({**row, "source": source}, ensure_ascii=False) + "\n"
                digest.update(line.encode())
                handle.write(line)
                n += 1
    return n


def absolute_media(sample: dict[str, Any]) -> dict[str, Any]:
    """Media paths made absolute: validation resolved them against the source file's folder (relative to the
    current folder), and a prepared row must name the same file from wherever it is read."""
    for field in MEDIA_FIELDS:
        items = sample.get(field)
        if isinstance(items, list):
            sample[field] = [os.path.abspath(item) if isinstance(item, str) and not _is_url(item) else item
                             for item in items]
    return sample


def _is_url(item: str) -> bool:
    return item.startswith(("http://", "https://", "data:", "file://"))


def _keep_encoded_rows(out: Path, built: Any, marker: dict[str, Any]) -> None:
    """Rewrite train.jsonl/val.jsonl with only the rows encoding kept, and move the cache to the key of the
    rewritten rows (the encoded rows are the same, so `sft --dataset DIR` finds it)."""
    digest = hashlib.sha256()
    for split, encoded in (("train", built.train), ("val", built.val)):
        file = out / f"{split}.jsonl"
        if not file.is_file():
            continue
        left = Counter(encoded["source"]) if encoded is not None and len(encoded) else Counter()
        kept = []
        for line in file.read_text(encoding="utf-8").splitlines(keepends=True):
            source = json.loads(line)["source"]
            if left[source] > 0:
                left[source] -= 1
                kept.append(line)
                digest.update(line.encode())
        file.write_text("".join(kept), encoding="utf-8")
        marker["rows"][split] = len(kept)
    marker["fingerprint"] = digest.hexdigest()[:24]
    (out / PREPARED_MARKER).write_text(json.dumps(marker, indent=2, ensure_ascii=False) + "\n")
    if built.cache_dir is not None:
        _move_cache(Path(built.cache_dir), out, built)


def _move_cache(old: Path, out: Path, built: Any) -> None:
    from ..data.build import data_fingerprint
    from ..data.cache import encoding_key
    from ..data.sources import resolve_sources

    enc, template, task = built.settings
    key = encoding_key(data_fingerprint(resolve_sources(enc.dataset, enc), [], enc), template, task,
                       bool(enc.strict))
    new = old.with_name(key)
    if new != old:
        shutil.rmtree(new, ignore_errors=True)
        os.replace(old, new)
        meta = new / "meta.json"
        if meta.is_file():
            meta.write_text(json.dumps({**json.loads(meta.read_text()), "key": key}, indent=2, default=str) + "\n")
        logger.info(f"dropped rows left out of the prepared files; their encoded data moved to {new}")
    built.cache_dir = new


def _encode(cfg: PrepareConfig, out: Path) -> Any:
    """Encode the prepared rows exactly as `sft --dataset DIR` will, writing the cache into DIR/encoded."""
    from ..models import load_tokenizer
    from ..templates import get_template
    from .common import model_info

    info = model_info(cfg)
    tokenizer = load_tokenizer(info, cfg.trust_remote_code)
    template = get_template(tokenizer, info, system=cfg.system, max_length=cfg.max_length,
                            truncation_strategy=cfg.truncation_strategy)
    enc = copy.deepcopy(cfg)  # its own sections: the changes below must not reach cfg
    enc.dataset, enc.val_dataset, enc.split_dataset_ratio = [str(out)], [], 0.0
    enc.columns, enc.model_name, enc.model_author = {}, [], []  # already applied to the canonical rows
    enc.load_from_cache_file = False
    enc._write_cache = True
    enc.lazy_tokenize = False if cfg.lazy_tokenize is None else cfg.lazy_tokenize
    task = "pt" if cfg.task == "pt" else "sft"
    built = build_datasets(enc, template, task, log=False)
    built.settings = (enc, template, task)
    return built


def _merge(first: DataReport, second: DataReport) -> DataReport:
    """Rows dropped while reading plus rows dropped while encoding, with the encoding's token statistics."""
    second.read = first.read
    second.dropped = first.dropped + second.dropped
    second.problems = first.problems + second.problems
    return second

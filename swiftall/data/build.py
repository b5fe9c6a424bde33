"""Read, convert, validate and encode datasets, with a report that accounts for every row.

Two stages, both on `datasets` Arrow tables:
1. canonical: sources -> rows -> canonical samples (stored as JSON text with their file:line), validated in the
   main process so a bad row stops the run at once (or is dropped and counted with --strict false);
2. encoded: `Dataset.map` through the template (parallel with --dataset_num_proc), then saved to the encoding
   cache keyed by tokenizer/template/max_length/data, which the next run loads instead of encoding again.
--streaming true writes both stages to disk as they go (memory-mapped; data larger than memory), and
--lazy_tokenize true (the default for multimodal templates) encodes rows only when the trainer asks.
"""
from __future__ import annotations

import random
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from ..templates import Template
from ..utils.errors import DataError
from ..utils.log import get_logger
from .cache import cache_root, encoding_key, load_cached, quiet_progress, save_cached
from .convert import rename_columns, to_messages
from .encode import LazyEncoded, dumps, encode_batch, reason_of
from .read import Row
from .registry import load_extensions
from .report import MAX_LISTED, TOO_LONG, DataReport  # noqa: F401  (MAX_LISTED re-exported)
from .sources import Source, resolve_sources
from .validate import validate_sample

logger = get_logger(__name__)
BOOKKEEPING = ["_error", "_reason", "_fatal", "_over", "_truncated", "_trained", "_length"]
STRICT_HINT = "\n(pass --strict false to skip bad rows and report them)"


@dataclass
class BuiltData:
    train: Any          # a sequence (len, getitem) of {"input_ids", "labels", "source", ...template extras}
    val: Any
    report: DataReport
    cache_dir: Optional[Path] = None
    from_cache: bool = False


def read_rows(specs: list[str], args: Any) -> list[Row]:
    """Raw rows of every --dataset value (registered names, files, hub ids), sampled as 'name#N' asks."""
    load_extensions(args)
    rows: list[Row] = []
    for source in resolve_sources(specs, args):
        rows.extend(source.rows(args))
    return rows


# ---- stage 1: canonical samples ------------------------------------------------------------------------
def iter_canonical(sources: list[Source], args: Any, report: DataReport, task: str,
                   split: str = "train") -> Iterator[dict[str, str]]:
    columns = getattr(args, "columns", {}) or {}
    for source in sources:
        for row in source.rows(args, split):
            report.read += 1
            try:
                rename_columns(row, columns)
                sample = to_messages(row, task)
                validate_sample(row, sample, task)
                text = dumps(sample)
            except (DataError, TypeError) as exc:
                message = str(exc) if str(exc).startswith(row.file) else f"{row.where}: {exc}"
                if getattr(args, "strict", True):
                    raise DataError(message + STRICT_HINT) from None
                report.drop(reason_of(message), message)
                continue
            yield {"source": row.where, "sample": text}


def canonical_dataset(sources: list[Source], args: Any, report: DataReport, task: str, split: str = "train",
                      work_dir: Optional[Path] = None) -> Any:
    """An Arrow dataset with columns source, sample (canonical JSON)."""
    from datasets import Dataset, Features, Value

    features = Features({"source": Value("string"), "sample": Value("string")})
    if getattr(args, "streaming", False):
        work_dir = work_dir or cache_root(args) / f"work-{uuid.uuid4().hex[:12]}"
        gen = _Generator(sources, args, report, task, split)
        return Dataset.from_generator(gen, features=features, cache_dir=str(work_dir / "canonical"))
    rows = list(iter_canonical(sources, args, report, task, split))
    return Dataset.from_dict({"source": [r["source"] for r in rows], "sample": [r["sample"] for r in rows]},
                             features=features)


class _Generator:
    """A generator factory for Dataset.from_generator (a fresh id so its own cache is never reused)."""

    def __init__(self, *args: Any):
        self.args, self.nonce = args, uuid.uuid4().hex

    def __call__(self) -> Iterator[dict[str, str]]:
        yield from iter_canonical(*self.args)


def canonical_datasets(args: Any, report: DataReport, task: str = "sft", train_src: Optional[list[Source]] = None,
                       val_src: Optional[list[Source]] = None, work_dir: Optional[Path] = None) -> tuple[Any, Any]:
    """(train, val) canonical datasets for --dataset/--val_dataset/--split_dataset_ratio."""
    load_extensions(args)
    train_src = resolve_sources(args.dataset, args) if train_src is None else train_src
    val_src = resolve_sources(args.val_dataset, args) if val_src is None else val_src
    if getattr(args, "streaming", False) and work_dir is None:
        work_dir = cache_root(args) / f"work-{uuid.uuid4().hex[:12]}"
    train = canonical_dataset(train_src, args, report, task, work_dir=work_dir)
    if not val_src and len(train_src) == 1 and train_src[0].kind == "prepared":
        val_src, split = train_src, "val"   # a prepared folder brings its own validation rows
    else:
        split = "train"
    val = canonical_dataset(val_src, args, report, task, split, work_dir) if val_src else None
    ratio = getattr(args, "split_dataset_ratio", 0.0)
    if (val is None or not len(val)) and ratio > 0 and len(train) > 1:
        order = list(range(len(train)))
        random.Random(getattr(args, "data_seed", 42)).shuffle(order)
        n_val = max(1, int(len(train) * ratio))
        val = train.select(sorted(order[:n_val]))
        train = train.select(sorted(order[n_val:]))
    return train, val


# ---- stage 2: encoding ---------------------------------------------------------------------------------
def data_fingerprint(train_src: list[Source], val_src: list[Source], args: Any) -> dict[str, Any]:
    """What the canonical rows depend on (settings that cannot change them are left out, so a prepared folder
    encoded by `prepare --model` is found again by `sft --dataset DIR`)."""
    sources = [*train_src, *val_src]
    names = ["columns", "data_seed", "split_dataset_ratio"]
    if any(s.kind == "hub" for s in sources):
        names.append("hub")
    if any(s.meta is not None and s.meta.needs_model_name for s in sources):
        names += ["model_name", "model_author"]
    if any(s.count is not None for s in sources):
        names.append("streaming")
    return {"train": [(s.cache_spec, s.fingerprint()) for s in train_src],
            "val": [(s.cache_spec, s.fingerprint()) for s in val_src],
            **{n: getattr(args, n, None) for n in names}}


def encode_dataset(dataset: Any, template: Template, args: Any, report: DataReport, task: str, key: str,
                   work_dir: Optional[Path] = None) -> Any:
    """Encode with Dataset.map, account for every row in the report, stop on a fatal one, drop the rest."""
    if dataset is None or not len(dataset):
        return dataset
    num_proc = max(1, int(getattr(args, "dataset_num_proc", 1) or 1))
    kwargs: dict[str, Any] = {}
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        kwargs["cache_file_name"] = str(work_dir / f"encoded-{uuid.uuid4().hex[:8]}.arrow")
    with quiet_progress(len(dataset) < 20000):
        encoded = dataset.map(_encode_batch, batched=True, batch_size=256,
                              num_proc=num_proc if num_proc > 1 else None,
                              fn_kwargs={"template": template, "task": task,
                                         "strategy": getattr(args, "truncation_strategy", "delete"),
                                         "strict": bool(getattr(args, "strict", True))},
                              remove_columns=["sample"], new_fingerprint=f"{key}-{uuid.uuid4().hex[:8]}",
                              load_from_cache_file=False, desc="encoding", **kwargs)
    book = encoded.select_columns(BOOKKEEPING).to_dict()
    fatal = next((i for i, f in enumerate(book["_fatal"]) if f), None)
    if fatal is not None:
        others = sum(1 for e in book["_error"] if e) - 1
        more = f"\n({others} more rows have problems)" if others > 0 else ""
        hint = "" if book["_reason"][fatal] == TOO_LONG else STRICT_HINT
        raise DataError(book["_error"][fatal] + more + hint)
    keep = []
    for i, error in enumerate(book["_error"]):
        report.over_max_length += book["_over"][i]
        if error:
            report.drop(book["_reason"][i], error)
            continue
        keep.append(i)
        report.kept += 1
        report.truncated += book["_truncated"][i]
        report.lengths.append(book["_length"][i])
        report.trained.append(book["_trained"][i])
    if len(keep) < len(encoded):
        encoded = encoded.select(keep)
    return encoded.remove_columns(BOOKKEEPING)


def _encode_batch(batch: dict[str, list], **kwargs: Any) -> dict[str, list]:
    out = encode_batch(batch, **kwargs)
    out["_length"] = [len(ids) for ids in out["input_ids"]]
    return out


def use_lazy(args: Any, template: Any) -> bool:
    """Multimodal templates (their own collator) put media tensors in rows, which Arrow cannot hold: always lazy
    for training (prepare still encodes them once for the report)."""
    if getattr(template, "collator", None) is not None:
        return not getattr(args, "_write_cache", False)
    return bool(getattr(args, "lazy_tokenize", None))


def build_datasets(args: Any, template: Template, task: str = "sft", log: bool = True) -> BuiltData:
    """Everything the trainer needs from --dataset/--val_dataset/--split_dataset_ratio, from the cache when the
    tokenizer, template, max_length and data are unchanged."""
    load_extensions(args)
    train_src, val_src = resolve_sources(args.dataset, args), resolve_sources(args.val_dataset, args)
    lazy = use_lazy(args, template)
    key = encoding_key(data_fingerprint(train_src, val_src, args), template, task, bool(getattr(args, "strict", True)))
    folders = [s.path / "encoded" / key for s in train_src if s.kind == "prepared" and len(train_src) == 1]
    folders.append(cache_root(args) / key)
    use_cache = getattr(args, "load_from_cache_file", True) and not lazy
    if use_cache:
        for folder in folders:
            hit = load_cached(folder)
            if hit is not None:
                logger.info(f"reusing encoded data from {folder} (same tokenizer, template, max_length and data)")
                if log:
                    logger.info(hit[2].summary())
                return BuiltData(hit[0], hit[1], hit[2], folder, True)
    report = DataReport(max_length=template.max_length, encoded=not lazy)
    streaming = bool(getattr(args, "streaming", False))
    work_dir = cache_root(args) / f"work-{uuid.uuid4().hex[:12]}" if streaming else None
    train_c, val_c = canonical_datasets(args, report, task, train_src, val_src, work_dir)
    check_nonempty(report, train_c, "--dataset")
    if lazy:
        strategy = getattr(args, "truncation_strategy", "delete")
        report.kept = len(train_c) + (len(val_c) if val_c is not None else 0)
        _log(report, log)
        val = LazyEncoded(val_c, template, task, strategy) if val_c is not None else []
        return BuiltData(LazyEncoded(train_c, template, task, strategy), val, report)
    train = encode_dataset(train_c, template, args, report, task, key, work_dir)
    val = encode_dataset(val_c, template, args, report, task, key, work_dir) if val_c is not None else []
    check_nonempty(report, train, "--dataset")
    _log(report, log)
    folder = _save(folders, train, val, report, args, key) if use_cache or getattr(args, "_write_cache", False) \
        else None
    if work_dir is not None and folder is not None:  # streamed: serve the cached copy, drop the work files
        train, val, _ = load_cached(folder)
        shutil.rmtree(work_dir, ignore_errors=True)
    return BuiltData(train, val, report, folder)


def _save(folders: list[Path], train: Any, val: Any, report: DataReport, args: Any, key: str) -> Optional[Path]:
    meta = {"key": key, "dataset": args.dataset, "val_dataset": args.val_dataset,
            "max_length": getattr(args, "max_length", None),
            "truncation_strategy": getattr(args, "truncation_strategy", None)}
    for folder in folders:
        folder.parent.mkdir(parents=True, exist_ok=True)
        if save_cached(folder, train, val, report, meta):
            logger.info(f"encoded data cached in {folder}")
            return folder
    return None


def check_nonempty(report: DataReport, dataset: Any, flag: str) -> None:
    if dataset is not None and len(dataset):
        return
    if report.read == 0:
        raise DataError(f"{flag}: no rows found in the data; check the files are not empty")
    raise DataError(f"every training row was dropped ({report.read} read):\n{report.summary()}\n  "
                    + report.problem_lines())


def _log(report: DataReport, log: bool = True) -> None:
    if not log:
        return
    if report.problems:
        logger.warning("dropped rows:\n  " + report.problem_lines())
    logger.info(report.summary())

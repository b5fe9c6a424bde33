"""Read, convert, validate and encode datasets, with a report that accounts for every row."""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..templates import Encoded, Template, TemplateError, TooLongError
from ..utils.errors import DataError
from ..utils.log import get_logger
from .convert import rename_columns, to_messages
from .read import Row, read_path, sample, split_spec
from .registry import builtin_path, get_dataset
from .validate import validate_sample

logger = get_logger(__name__)
MAX_LISTED = 10


@dataclass
class DataReport:
    """What happened to every row: kept, or dropped with a reason and where."""

    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    trained: list[int] = field(default_factory=list)
    truncated: int = 0

    def drop(self, reason: str, message: str) -> None:
        self.dropped[reason] += 1
        self.problems.append(message)

    def summary(self) -> str:
        lines = [f"rows read {self.read}, kept {self.kept}, dropped {sum(self.dropped.values())}"]
        for reason, count in self.dropped.most_common():
            lines.append(f"  dropped {count}: {reason}")
        if self.truncated:
            lines.append(f"  truncated {self.truncated} rows to --max_length")
        if self.lengths:
            ls = sorted(self.lengths)
            lines.append(f"tokens per row: min {ls[0]}, median {ls[len(ls) // 2]}, max {ls[-1]}; trained tokens "
                         f"in all {sum(self.trained)}")
        return "\n".join(lines)


@dataclass
class BuiltData:
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    report: DataReport


def resolve_spec(spec: str, args: Any) -> tuple[Path, Optional[int], bool]:
    """A --dataset value -> (local path, sample count, needs name substitution)."""
    name, count = split_spec(spec)
    meta = get_dataset(name)
    if meta is not None and meta.builtin_file:
        return builtin_path(meta), count, meta.needs_model_name
    path = Path(name).expanduser()
    if path.exists():
        return path, count, False
    if meta is not None:
        raise DataError(f"--dataset {name}: a registered hub dataset ({meta.hf_id or meta.ms_id}); hub datasets are "
                        "not downloaded by this version: save it locally and pass the file")
    raise DataError(f"--dataset {spec}: no such file or folder, and not a registered dataset name "
                    "(see: swiftall dataset list)")


def read_rows(specs: list[str], args: Any) -> list[Row]:
    rows: list[Row] = []
    for spec in specs:
        path, count, needs_name = resolve_spec(spec, args)
        got = sample(list(read_path(path)), count, getattr(args, "data_seed", 42))
        if needs_name:
            got = _fill_names(got, args)
        rows.extend(got)
    return rows


def _fill_names(rows: list[Row], args: Any) -> list[Row]:
    names, authors = list(getattr(args, "model_name", []) or []), list(getattr(args, "model_author", []) or [])
    if not names or not authors:
        raise DataError("the self-cognition dataset needs --model_name NAME and --model_author AUTHOR")
    out = []
    for row in rows:
        data = {k: _replace(v, names[0], authors[0]) for k, v in row.data.items()}
        out.append(Row(data, row.file, row.line))
    return out


def _replace(value: Any, name: str, author: str) -> Any:
    if isinstance(value, str):
        return value.replace("{{NAME}}", name).replace("{{AUTHOR}}", author)
    return value


def encode_rows(rows: list[Row], template: Template, args: Any, report: DataReport, task: str = "sft") -> list[dict]:
    strategy = getattr(args, "truncation_strategy", "delete")
    out = []
    for row in rows:
        report.read += 1
        try:
            rename_columns(row, getattr(args, "columns", {}) or {})
            sample_ = to_messages(row, task)
            validate_sample(row, sample_, task)
            if "messages" not in sample_:
                raise DataError(f"{row.where}: plain 'text' rows are for pre-training; this command trains on "
                                "conversations")
            media = {k: sample_[k] for k in ("images", "audios", "videos") if sample_.get(k)}
            encoded = template.encode(sample_["messages"], tools=sample_.get("tools"), media=media or None)
        except TooLongError as exc:
            if strategy == "error":
                raise DataError(f"{row.where}: {exc}; raise --max_length or pick --truncation_strategy "
                                "delete|left|right") from None
            report.drop("longer than --max_length (truncation_strategy delete)", f"{row.where}: {exc}")
            continue
        except (DataError, TemplateError) as exc:
            message = str(exc) if str(exc).startswith(row.file) else f"{row.where}: {exc}"
            if getattr(args, "strict", True):
                raise DataError(message + "\n(pass --strict false to skip bad rows and report them)") from None
            report.drop(_reason(message), message)
            continue
        if "truncated_from" in encoded.extra:
            report.truncated += 1
        if encoded.trained_tokens == 0:
            report.drop("no trained (assistant) tokens left", f"{row.where}: no assistant tokens to train on "
                        "after truncation; raise --max_length or use --truncation_strategy left")
            continue
        report.kept += 1
        report.lengths.append(len(encoded))
        report.trained.append(encoded.trained_tokens)
        extra = {k: v for k, v in encoded.extra.items() if k != "truncated_from"}  # e.g. pixel values
        out.append({"input_ids": encoded.input_ids, "labels": encoded.labels, "source": row.where, **extra})
    return out


def _reason(message: str) -> str:
    text = message.split(": ", 1)[-1]
    return text.split(";")[0][:80]


def build_datasets(args: Any, template: Template, task: str = "sft") -> BuiltData:
    """Everything the trainer needs from --dataset/--val_dataset/--split_dataset_ratio."""
    report = DataReport()
    train_rows = read_rows(args.dataset, args)
    val_rows = read_rows(args.val_dataset, args) if args.val_dataset else []
    train = encode_rows(train_rows, template, args, report, task)
    val = encode_rows(val_rows, template, args, report, task)
    if not train:
        raise DataError(f"every training row was dropped ({report.read} read):\n{report.summary()}\n"
                        + "\n".join(report.problems[:MAX_LISTED]))
    if not val and args.split_dataset_ratio > 0:
        rng = random.Random(args.data_seed)
        order = list(range(len(train)))
        rng.shuffle(order)
        n_val = max(1, int(len(train) * args.split_dataset_ratio))
        val_idx = set(order[:n_val])
        val = [train[i] for i in sorted(val_idx)]
        train = [row for i, row in enumerate(train) if i not in val_idx]
    if report.problems:
        logger.warning("dropped rows:\n  " + "\n  ".join(report.problems[:MAX_LISTED])
                       + (f"\n  ... and {len(report.problems) - MAX_LISTED} more" if len(report.problems) > MAX_LISTED else ""))
    logger.info(report.summary())
    return BuiltData(train, val, report)

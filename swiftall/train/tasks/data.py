"""--dataset/--val_dataset/--split_dataset_ratio -> encoded samples of a task, checked before the model loads.

Samples (token ids, truncated to --max_length):
- seq_cls: {"ids", "label"}
- embedding: {"anchor", "positives": [ids], "negatives": [ids], "label"}
- reranker: {"positives": [pair ids], "negatives": [pair ids]} (each pair is query + document as one text)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...data.build import read_rows
from ...data.convert import rename_columns
from ...data.preference import hold_out
from ...data.report import MAX_LISTED, DataReport
from ...models.tasks import encode, encode_pairs
from ...utils.errors import DataError
from ...utils.log import get_logger
from .rows import classification_sample, retrieval_sample

logger = get_logger(__name__)


@dataclass
class TaskData:
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    report: DataReport


def _convert(rows: list, args: Any, spec: Any, report: DataReport) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        report.read += 1
        try:
            if row.error:
                raise DataError(row.error if row.error.startswith(row.file) else f"{row.where}: {row.error}")
            rename_columns(row, getattr(args, "columns", {}) or {})
            sample = classification_sample(row, spec) if spec.task_type == "seq_cls" else retrieval_sample(row)
        except DataError as exc:
            if getattr(args, "strict", True):
                raise DataError(f"{exc}\n(pass --strict false to skip bad rows and report them)") from None
            report.drop(str(exc).split(": ", 2)[-1][:80], str(exc))
            continue
        report.kept += 1
        out.append(sample)
    return out


def _encode(samples: list[dict[str, Any]], tokenizer: Any, spec: Any, args: Any) -> list[dict[str, Any]]:
    n = args.max_length
    if spec.task_type == "seq_cls":
        ids = encode(tokenizer, [s["text"] for s in samples], n)
        return [{"ids": i, "label": s["label"]} for i, s in zip(ids, samples)]
    k = args.max_negative_samples
    out = []
    for s in samples:
        negatives = s["negatives"][:k]
        if spec.task_type == "reranker":
            pairs = encode_pairs(tokenizer, spec, s["anchor"], [*s["positives"], *negatives], n)
            out.append({"positives": pairs[:len(s["positives"])], "negatives": pairs[len(s["positives"]):]})
            continue
        texts = encode(tokenizer, [s["anchor"], *s["positives"], *negatives], n)
        p = 1 + len(s["positives"])
        out.append({"anchor": texts[0], "positives": texts[1:p], "negatives": texts[p:], "label": s["label"]})
    return out


def build_task_data(args: Any, tokenizer: Any, spec: Any) -> TaskData:
    report = DataReport()
    train = _convert(read_rows(args.dataset, args), args, spec, report)
    val = _convert(read_rows(args.val_dataset, args), args, spec, report) if args.val_dataset else []
    if not train:
        raise DataError(f"every training row was dropped ({report.read} read):\n{report.summary()}\n"
                        + "\n".join(report.problems[:MAX_LISTED]))
    if spec.task_type == "reranker" and args.task_loss_type == "listwise" and not any(s["negatives"] for s in train):
        raise DataError("--task_loss_type listwise ranks each positive against its row's negatives, but no training "
                        "row has a 'negative'; add negatives or use --task_loss_type pointwise")
    if len(train) > 1:
        train, val = hold_out(train, val, args)
    if report.problems:
        logger.warning("dropped rows:\n  " + "\n  ".join(report.problems[:MAX_LISTED]))
    logger.info(report.summary())
    return TaskData(_encode(train, tokenizer, spec, args), _encode(val, tokenizer, spec, args), report)

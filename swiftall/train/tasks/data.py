"""--dataset/--val_dataset/--split_dataset_ratio -> encoded samples of a task, checked before the model loads.

Samples (token ids, truncated to --max_length):
- seq_cls: {"ids", "label"}
- embedding: {"anchor", "positives": [ids], "negatives": [ids], "label"}; an item with media stays a media item
  (checked here, encoded by the model's processor when its batch is built: templates/task_media.py), and a model
  without a processor for it is refused here, naming the row
- reranker: {"positives": [pair ids], "negatives": [pair ids]} (each pair is query + document as one text)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ...data.build import read_rows
from ...data.convert import rename_columns
from ...data.preference import hold_out
from ...data.report import MAX_LISTED, DataReport
from ...models.tasks import encode, encode_pairs, is_media
from ...utils.errors import ConfigError, DataError
from ...utils.log import get_logger
from .rows import classification_sample, retrieval_sample

logger = get_logger(__name__)


@dataclass
class TaskData:
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    report: DataReport


def _convert(rows: list, args: Any, spec: Any, report: DataReport, media: Any = None) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        report.read += 1
        try:
            if row.error:
                raise DataError(row.error if row.error.startswith(row.file) else f"{row.where}: {row.error}")
            rename_columns(row, getattr(args, "columns", {}) or {})
            sample = classification_sample(row, spec) if spec.task_type == "seq_cls" else \
                retrieval_sample(row, spec.task_type)
        except DataError as exc:
            if getattr(args, "strict", True):
                raise DataError(f"{exc}\n(pass --strict false to skip bad rows and report them)") from None
            report.drop(str(exc).split(": ", 2)[-1][:80], str(exc))
            continue
        if spec.task_type == "embedding":
            _check_media(sample, media)
        report.kept += 1
        out.append(sample)
    return out


def _check_media(sample: dict[str, Any], media: Any) -> None:
    """Media the model cannot read stop the run (a ConfigError, whatever --strict says): every such row would fail."""
    for item in [sample["anchor"], *sample["positives"], *sample["negatives"]]:
        if is_media(item):
            if media is None:
                raise ConfigError(f"{item['source']}: gives media, but no processor was given to encode them")
            media.check(item, item["source"])


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


def build_task_data(args: Any, tokenizer: Any, spec: Any, media: Optional[Any] = None) -> TaskData:
    """`media`: the model's MediaEncoder (templates/task_media.py), which says which media it can read."""
    report = DataReport()
    train = _convert(read_rows(args.dataset, args), args, spec, report, media)
    val = _convert(read_rows(args.val_dataset, args), args, spec, report, media) if args.val_dataset else []
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

"""Calibration and held-out text for `swiftall export`: any swiftall dataset (--dataset/--val_dataset) read by the
data layer and rendered with the model's chat template (the export layer does not import the data layer)."""
from __future__ import annotations

from typing import Any, Optional

from ..data import read_rows
from ..data.convert import to_messages
from ..utils.errors import DataError


def dataset_texts(specs: list[str], cfg: Any, tokenizer: Any) -> list[str]:
    """Rows as text: conversations through the chat template, plain `text` rows as they are."""
    texts = []
    for row in read_rows(list(specs), cfg):
        if isinstance(row.data.get("text"), str) and not row.data.get("messages"):
            texts.append(row.data["text"])
            continue
        try:
            sample = to_messages(row, "sft")
        except DataError as exc:
            raise DataError(f"calibration data: {exc}") from None
        messages = [{"role": m["role"], "content": _text(m["content"])} for m in sample["messages"]]
        texts.append(tokenizer.apply_chat_template(messages, tokenize=False))
    return texts


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def texts_for(cfg: Any, tokenizer: Any, opts: Any) -> Any:
    """The calibration/held-out split of --dataset/--val_dataset (the built-in set without --dataset)."""
    from ..export.calib import split_texts

    dataset = list(getattr(cfg, "dataset", None) or [])
    val = list(getattr(cfg, "val_dataset", None) or [])
    texts: Optional[list[str]] = dataset_texts(dataset, cfg, tokenizer) if dataset else None
    val_texts = dataset_texts(val, cfg, tokenizer) if val else None
    return split_texts(texts, val_texts, tokenizer, opts.quant_n_samples, opts.check_n_samples, opts.quant_seqlen,
                       source=", ".join(dataset), val_source=", ".join(val))

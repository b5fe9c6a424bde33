"""Calibration and held-out text: `--dataset` rows (any swiftall dataset, rendered with the model's chat template),
or the built-in calibration set (48 short English paragraphs and code snippets) when no dataset is given.
The held-out part (`--val_dataset`, else the last rows of the calibration set) is never used for calibration."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..utils.errors import ConfigError, DataError

BUILTIN = Path(__file__).with_name("calibration.jsonl")


@dataclass
class TextSplit:
    calibration: list[list[int]]     # token ids, each at most seqlen long
    held_out: list[list[int]]
    source: str                      # where the rows came from, for the report


def builtin_texts() -> list[str]:
    return [json.loads(line)["text"] for line in BUILTIN.read_text().splitlines() if line.strip()]


def dataset_texts(specs: list[str], cfg: Any, tokenizer: Any) -> list[str]:
    """Rows of any swiftall dataset as text: conversations through the chat template, plain `text` as is."""
    from ..data import read_rows
    from ..data.convert import to_messages

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


def encode(texts: list[str], tokenizer: Any, seqlen: int) -> list[list[int]]:
    rows = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][:seqlen]
        if len(ids) >= 2:
            rows.append(ids)
    return rows


def split_texts(cfg: Any, tokenizer: Any, n_samples: int, n_held_out: int, seqlen: int) -> TextSplit:
    """Calibration rows (up to n_samples) and held-out rows (up to n_held_out)."""
    dataset = list(getattr(cfg, "dataset", None) or [])
    val = list(getattr(cfg, "val_dataset", None) or [])
    source = ", ".join(dataset) if dataset else "built-in calibration set"
    texts = dataset_texts(dataset, cfg, tokenizer) if dataset else builtin_texts()
    rows = encode(texts, tokenizer, seqlen)
    if not rows:
        raise ConfigError(f"calibration data ({source}) has 0 usable rows (each needs at least 2 tokens); "
                          "pass a --dataset with text or conversations")
    if val:
        held = encode(dataset_texts(val, cfg, tokenizer), tokenizer, seqlen)
        if not held:
            raise ConfigError(f"--val_dataset {', '.join(val)} has 0 usable rows for the export check")
        return TextSplit(rows[:n_samples], held[:n_held_out], f"{source}; held out: {', '.join(val)}")
    n_held = min(n_held_out, max(1, len(rows) // 4)) if len(rows) > 1 else 0
    calibration, held = (rows[:-n_held], rows[-n_held:]) if n_held else (rows, rows)
    return TextSplit(calibration[:n_samples], held, f"{source} (last {len(held)} rows held out)")

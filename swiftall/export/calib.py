"""Calibration and held-out text: `--dataset` rows (any swiftall dataset, read and rendered with the model's chat
template by the export pipeline), or the built-in calibration set (48 short English paragraphs and code snippets)
when no dataset is given.
The held-out part (`--val_dataset`, else the last rows of the calibration set) is never used for calibration."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..utils.errors import ConfigError

BUILTIN = Path(__file__).with_name("calibration.jsonl")


@dataclass
class TextSplit:
    calibration: list[list[int]]     # token ids, each at most seqlen long
    held_out: list[list[int]]
    source: str                      # where the rows came from, for the report


def builtin_texts() -> list[str]:
    return [json.loads(line)["text"] for line in BUILTIN.read_text().splitlines() if line.strip()]


def encode(texts: list[str], tokenizer: Any, seqlen: int) -> list[list[int]]:
    rows = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][:seqlen]
        if len(ids) >= 2:
            rows.append(ids)
    return rows


def split_texts(texts: Optional[list[str]], val_texts: Optional[list[str]], tokenizer: Any, n_samples: int,
                n_held_out: int, seqlen: int, source: str = "", val_source: str = "") -> TextSplit:
    """Calibration rows (up to n_samples) and held-out rows (up to n_held_out). `texts` None: the built-in set;
    `val_texts` None: the last rows of the calibration texts are held out."""
    source = source if texts is not None else "built-in calibration set"
    rows = encode(builtin_texts() if texts is None else texts, tokenizer, seqlen)
    if not rows:
        raise ConfigError(f"calibration data ({source}) has 0 usable rows (each needs at least 2 tokens); "
                          "pass a --dataset with text or conversations")
    if val_texts is not None:
        held = encode(val_texts, tokenizer, seqlen)
        if not held:
            raise ConfigError(f"--val_dataset {val_source} has 0 usable rows for the export check")
        return TextSplit(rows[:n_samples], held[:n_held_out], f"{source}; held out: {val_source}")
    n_held = min(n_held_out, max(1, len(rows) // 4)) if len(rows) > 1 else 0
    calibration, held = (rows[:-n_held], rows[-n_held:]) if n_held else (rows, rows)
    return TextSplit(calibration[:n_samples], held, f"{source} (last {len(held)} rows held out)")

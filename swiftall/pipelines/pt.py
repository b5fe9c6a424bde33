"""swiftall pt: continued pre-training on plain text (a 'text' column, or .txt files read one row per line): the
loss on every token, rows packed into --max_length by default, and the same tuners, checkpoints and outputs as sft
(it runs sft's pipeline with the pre-training task)."""
from __future__ import annotations

from typing import Any

from ..config import PtConfig
from .sft import sft_main


def pt_main(config: Any = None) -> dict[str, Any]:
    """Run continued pre-training; returns sft's summary (output_dir, steps, losses, tokens)."""
    return sft_main(PtConfig.from_any(config))

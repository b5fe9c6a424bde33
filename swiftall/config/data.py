"""Configs of the data commands: `swiftall prepare` and `swiftall template show`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..utils.errors import ConfigError
from .args import DataArgs, ModelArgs
from .base import arg

TASKS = ("sft", "pt", "rlhf", "kto", "grpo")


@dataclass
class PrepareConfig(DataArgs, ModelArgs):
    """Validate every row, write the canonical samples (and, with --model, the encoded Arrow cache that sft reuses
    through --dataset DIR), and print a report of what was kept and dropped."""

    command = "prepare"
    output_dir: Optional[str] = arg(None, "Folder for train.jsonl/val.jsonl (canonical rows), encoded/ (the Arrow "
                                    "cache) and report.json")
    overwrite_output_dir: bool = arg(False, "Replace an existing prepared --output_dir")
    dataset_name: Optional[str] = arg(None, "ms-swift's shape: a name recorded for the prepared data")
    jsonl_path: list[str] = arg([], "ms-swift's shape: data files to prepare (added to --dataset)")
    task: str = arg("sft", "What the data will train; decides which rows are valid (sft needs a final assistant "
                    "answer, rlhf a rejected answer, kto a label, pt plain text)", choices=TASKS)

    def _check_prepare(self) -> None:
        self.dataset = [*self.dataset, *self.jsonl_path]
        self.jsonl_path = []
        if not self.dataset:
            raise ConfigError("swiftall prepare: give --dataset (files, folders, registered names or hub ids) or "
                              "--jsonl_path FILE")
        if not self.output_dir:
            raise ConfigError("swiftall prepare: --output_dir DIR is required (where the prepared data goes)")


@dataclass
class TemplateShowConfig(DataArgs, ModelArgs):
    """Print encoded rows with the trained (loss-bearing) tokens marked, to check what the model learns."""

    command = "template show"
    rows: int = arg(3, "How many rows to show")
    color: Optional[bool] = arg(None, "Mark trained tokens with colour (default: on a terminal, unless NO_COLOR); "
                                "false marks them [[like this]]")
    task: str = arg("sft", "Which rows are valid (as for prepare)", choices=TASKS)

    def _check_template_show(self) -> None:
        if not self.model and not self.model_type:
            raise ConfigError("swiftall template show: --model is required")
        if not self.dataset:
            raise ConfigError("swiftall template show: --dataset is required")
        if self.rows < 1:
            raise ConfigError(f"--rows must be at least 1, got {self.rows}")

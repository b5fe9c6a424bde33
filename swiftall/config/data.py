"""Configs of the data commands: `swiftall prepare` and `swiftall template show`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..utils.errors import ConfigError
from .base import Config, Section, arg
from .commands import MODEL
from .sections import TASKS, DataSection, EncodeSection, OutputSection, TaskSection, TemplateSection  # noqa: F401


@dataclass
class PrepareSection(Section):
    name = "prepare"
    title = "prepare (ms-swift's shape)"
    dataset_name: Optional[str] = arg(None, "A name recorded for the prepared data")
    jsonl_path: list[str] = arg([], "Data files to prepare (read together with --dataset)")


class PrepareConfig(Config):
    """Validate every row, write the canonical samples (and, with --model, the encoded Arrow cache that sft reuses
    through --dataset DIR), and print a report of what was kept and dropped. --model is optional here."""

    command = "prepare"
    sections = (*MODEL, TemplateSection, PrepareSection, DataSection, EncodeSection, TaskSection, OutputSection)

    def check(self) -> None:
        if not (self.dataset or self.jsonl_path):
            raise ConfigError("swiftall prepare: give --dataset (files, folders, registered names or hub ids) or "
                              "--jsonl_path FILE")
        if not self.output_dir:
            raise ConfigError("swiftall prepare: --output_dir DIR is required (where the prepared data goes)")

    def all_datasets(self) -> list[str]:
        return [*self.dataset, *self.jsonl_path]


@dataclass
class ShowSection(Section):
    name = "show"
    title = "show"
    rows: int = arg(3, "How many rows to show")
    color: Optional[bool] = arg(None, "Mark trained tokens with colour (default: on a terminal, unless NO_COLOR); "
                                "false marks them [[like this]]")

    def check(self) -> None:
        if self.rows < 1:
            raise ConfigError(f"--rows must be at least 1, got {self.rows}")


class TemplateShowConfig(Config):
    """Print encoded rows with the trained (loss-bearing) tokens marked, to check what the model learns."""

    command = "template show"
    sections = (*MODEL, TemplateSection, DataSection, EncodeSection, TaskSection, ShowSection)

    def check(self) -> None:
        if not self.section("model").given():
            raise ConfigError("swiftall template show: --model is required")
        if not self.dataset:
            raise ConfigError("swiftall template show: --dataset is required")

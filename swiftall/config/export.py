"""`swiftall export`: merge LoRA adapters into a standalone model."""
from __future__ import annotations

from dataclasses import dataclass

from ..utils.errors import ConfigError
from .base import Config, Section, arg
from .commands import MODEL
from .sections import AdapterSection, OutputSection


@dataclass
class ExportSection(Section):
    name = "export"
    title = "export"
    merge_lora: bool = arg(False, "Merge --adapters into the base weights and save a standalone model "
                           "(default --output_dir: <adapter folder>-merged)")


class ExportConfig(Config):
    """Export a model: merge LoRA adapters into a standalone folder."""

    command = "export"
    sections = (*MODEL, AdapterSection, ExportSection, OutputSection)

    def check(self) -> None:
        if self.merge_lora and not self.adapters:
            raise ConfigError("swiftall export --merge_lora true needs --adapters DIR (the LoRA run folder)")
        if not self.merge_lora:
            raise ConfigError("swiftall export: nothing to do; pass --merge_lora true")

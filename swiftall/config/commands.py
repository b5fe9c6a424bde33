"""One config class per command, composed from the mixins in args.py."""
from __future__ import annotations

from dataclasses import dataclass

from ..utils.errors import ConfigError
from .args import (AdapterArgs, DataArgs, ExportArgs, GenerationArgs, InferArgs, ModelArgs, QueryArgs, TrainArgs,
                   TunerArgs)
from .multimodal import MultimodalArgs


@dataclass
class SftConfig(TrainArgs, MultimodalArgs, TunerArgs, DataArgs, ModelArgs):
    """Fine-tune a model (full or LoRA) on conversation data."""

    command = "sft"

    def _check_sft(self) -> None:
        if not self.model and not self.model_type:
            raise ConfigError("swiftall sft: --model is required (for example --model smollm2-135m-instruct, "
                              "the embedded default)")
        if not self.dataset:
            raise ConfigError("swiftall sft: --dataset is required (a file, folder or registered name; "
                              "see swiftall dataset list)")


@dataclass
class InferConfig(QueryArgs, InferArgs, GenerationArgs, AdapterArgs, MultimodalArgs, DataArgs, ModelArgs):
    """Chat with a model on the terminal, answer one --query, or answer every row of --val_dataset/--dataset into
    --result_path."""

    command = "infer"

    def _check_infer(self) -> None:
        if not (self.model or self.model_type or self.adapters):
            raise ConfigError("swiftall infer: give --model, or --adapters DIR of a swiftall run")
        if (self.val_dataset or self.dataset) and (self.query is not None or self.media_flags()):
            raise ConfigError("swiftall infer: --query/--images/--audios/--videos are for one question or the terminal "
                              "chat; with --val_dataset each row carries its own images/audios/videos")


@dataclass
class ExportConfig(ExportArgs, AdapterArgs, ModelArgs):
    """Export a model: merge LoRA adapters into a standalone folder."""

    command = "export"

    def _check_export(self) -> None:
        if self.merge_lora and not self.adapters:
            raise ConfigError("swiftall export --merge_lora true needs --adapters DIR (the LoRA run folder)")
        if not self.merge_lora:
            raise ConfigError("swiftall export: nothing to do; pass --merge_lora true")


@dataclass
class DownloadConfig(ModelArgs):
    """Download a model into the local cache."""

    command = "download"

    def _check_download(self) -> None:
        if not self.model and not self.model_type:
            raise ConfigError("swiftall download: --model ID is required")

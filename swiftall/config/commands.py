"""One config per command, composed from sections (sections.py, training.py, inference.py); each command's own
`check` looks across its sections and changes nothing."""
from __future__ import annotations

from typing import Any

from ..utils.errors import ConfigError
from .base import Config
from .distributed import DistributedSection
from .eval_task import EvalTaskSection, TrainEvalSection
from .inference import EngineSection, GenerationSection, MediaSection, QuerySection, SamplingSection
from .sections import (AdapterSection, CommonSection, DataSection, EncodeSection, ModelSection, OutputSection,
                       SeedSection, TemplateSection)
from .speed import SpeedSection
from .tasks import TaskTypeSection
from .training import BatchingSection, FreezeSection, PaddingFreeSection, TrainSection, TunerSection
from .tuning import TRAIN_QUANT, QuantSection, TunerOptionsSection

MODEL = (ModelSection, CommonSection)
TRAINING = (*MODEL, TemplateSection, DataSection, EncodeSection, TunerSection, TunerOptionsSection, QuantSection,
            FreezeSection, MediaSection, TrainSection, SeedSection, OutputSection, DistributedSection)


class MediaMixin:
    """Configs that size and sample media."""

    def media_options(self) -> dict[str, Any]:
        return self.section("media").options()


def check_training_quant(cfg: Config) -> None:
    """A quantized base trains adapters only, with a method that loads for training."""
    if cfg.quant_method is None:
        return
    if cfg.quant_method not in TRAIN_QUANT:
        raise ConfigError(f"--quant_method {cfg.quant_method} is an export method; training loads a base quantized "
                          f"with {', '.join(TRAIN_QUANT)} (or give --model an already GPTQ/AWQ-quantized folder)")
    if cfg.train_type in ("full", "lisa", "llamapro"):
        raise ConfigError(f"--quant_method {cfg.quant_method} with --train_type {cfg.train_type}: quantized weights "
                          "cannot be trained directly; use --train_type lora (QLoRA) or another adapter tuner")


class SftConfig(MediaMixin, Config):
    """Fine-tune a model (full or LoRA) on conversation data."""

    command = "sft"
    sections = (*TRAINING, BatchingSection, PaddingFreeSection, SpeedSection, TaskTypeSection, EvalTaskSection,
                TrainEvalSection)

    def check(self) -> None:
        if not self.section("model").given():
            raise ConfigError("swiftall sft: --model is required (for example --model smollm2-135m-instruct, "
                              "the embedded default)")
        if not self.dataset:
            raise ConfigError(f"swiftall {self.command}: --dataset is required (a file, folder or registered name; "
                              "see swiftall dataset list)")
        check_training_quant(self)


class InferConfig(MediaMixin, Config):
    """Chat with a model on the terminal, answer one --query, or answer every row of --val_dataset/--dataset into
    --result_path."""

    command = "infer"
    sections = (*MODEL, AdapterSection, TemplateSection, QuerySection, DataSection, MediaSection, EngineSection,
                GenerationSection, SamplingSection, SeedSection)

    def check(self) -> None:
        if not (self.section("model").given() or self.adapters):
            raise ConfigError("swiftall infer: give --model, or --adapters DIR of a swiftall run")
        if (self.val_dataset or self.dataset) and (self.query is not None or self.media_flags()):
            raise ConfigError("swiftall infer: --query/--images/--audios/--videos are for one question or the terminal "
                              "chat; with --val_dataset each row carries its own images/audios/videos")

    def media_flags(self) -> dict[str, list[str]]:
        return self.section("query").media_flags()


class DownloadConfig(Config):
    """Download a model into the local cache."""

    command = "download"
    sections = MODEL

    def check(self) -> None:
        if not self.section("model").given():
            raise ConfigError("swiftall download: --model ID is required")


class PtConfig(SftConfig):
    """Continued pre-training: plain text rows (a 'text' column, or .txt files), loss on every token, packed into
    rows of --max_length by default; the same tuners and outputs as sft."""

    command = "pt"
    defaults = {"packing": True}

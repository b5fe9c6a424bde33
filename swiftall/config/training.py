"""Sections of the training commands: the tuner, which multimodal parts train, and the trainer's flags."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..utils.errors import ConfigError
from .base import Section, arg

TUNERS = ("full", "lora", "adalora", "ia3", "vera", "boft", "oft", "fourierft", "loha", "lokr", "prompt", "prefix",
          "p_tuning", "reft", "llamapro", "adapter", "lisa")


@dataclass
class TunerSection(Section):
    name = "tuner"
    title = "tuner"
    train_type: str = arg("lora", "What to train: full (all weights), lora, or another tuner (swiftall tuners "
                          "lists them and what combines with what)", choices=TUNERS, aliases=("sft_type", "tuner_type"))
    lora_rank: int = arg(8, "LoRA rank r")
    lora_alpha: int = arg(32, "LoRA alpha (scale is alpha / rank)")
    lora_dropout: float = arg(0.05, "Dropout on LoRA inputs", aliases=("lora_dropout_p",))
    fast_dropout: bool = arg(True, "LoRA dropout on CPU draws its masks from 16-bit random integers (p rounded to "
                             "1/65536), 8x cheaper than torch's Bernoulli sampler; false: nn.Dropout's own masks, as "
                             "peft draws them")
    target_modules: list[str] = arg(["all-linear"], "Modules to adapt: all-linear, or module names",
                                    aliases=("lora_target_modules",))
    modules_to_save: list[str] = arg([], "Extra modules trained fully and saved with the adapter")
    use_dora: bool = arg(False, "DoRA: weight-decomposed LoRA")
    use_rslora: bool = arg(False, "rsLoRA: scale by alpha / sqrt(rank)")

    def check(self) -> None:
        if self.lora_rank < 1:
            raise ConfigError(f"--lora_rank must be at least 1, got {self.lora_rank}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError(f"--lora_dropout must be in [0, 1), got {self.lora_dropout}")


@dataclass
class PaddingFreeSection(Section):
    name = "padding_free"
    title = "padding-free batches (sft, dpo)"
    padding_free: Optional[bool] = arg(None, "Batches without pad tokens, attention kept per sample. sft: each batch "
                                       "as one row (default: on for registered text model families); dpo: each "
                                       "pair's shared prompt computed once, then its two answers (default: on for "
                                       "text pairs); false: padded batches")


@dataclass
class BatchingSection(Section):
    name = "batching"
    title = "batching (sft)"
    group_by_length: bool = arg(True, "When batches are padded, batch rows of similar length together so "
                                "little is wasted on padding")
    packing: bool = arg(False, "Pack several samples into rows of --max_length (attention kept per sample)")


@dataclass
class FreezeSection(Section):
    name = "freeze"
    title = "multimodal training"
    freeze_vit: bool = arg(True, "Multimodal models: keep the vision/audio encoder frozen (no LoRA on it, no "
                           "updates in full training)")
    freeze_aligner: bool = arg(True, "Multimodal models: keep the projector between encoder and language model "
                               "frozen")
    freeze_llm: bool = arg(False, "Multimodal models: keep the language model frozen (train only the encoder "
                           "and/or aligner)")
    vit_lr: Optional[float] = arg(None, "sft: learning rate of the vision/audio encoder (default: --learning_rate)")
    aligner_lr: Optional[float] = arg(None, "sft: learning rate of the aligner/projector (default: --learning_rate)")

    def check(self) -> None:
        for name in ("vit_lr", "aligner_lr"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"--{name} must be >= 0, got {value}")
        for lr, freeze in (("vit_lr", "freeze_vit"), ("aligner_lr", "freeze_aligner")):
            if getattr(self, lr) is not None and getattr(self, freeze):
                raise ConfigError(f"--{lr} is set but --{freeze} is true (its default), so that part would not "
                                  f"train and the rate would be ignored: add --{freeze} false, or drop --{lr}")


@dataclass
class TrainSection(Section):
    name = "train"
    title = "training"
    num_train_epochs: float = arg(1.0, "Passes over the training data")
    max_steps: int = arg(-1, "Stop after this many optimizer steps (overrides epochs when > 0)")
    per_device_train_batch_size: int = arg(1, "Rows per device per forward pass", aliases=("batch_size",))
    per_device_eval_batch_size: int = arg(1, "Rows per device per evaluation pass")
    gradient_accumulation_steps: int = arg(1, "Forward passes per optimizer step")
    learning_rate: Optional[float] = arg(None, "Peak learning rate (default: 1e-4 for LoRA, 1e-5 for full)")
    lr_scheduler_type: str = arg("cosine", "Learning-rate schedule (any transformers scheduler name)")
    warmup_ratio: float = arg(0.05, "Fraction of steps spent warming the learning rate up")
    weight_decay: float = arg(0.1, "AdamW weight decay")
    max_grad_norm: float = arg(1.0, "Gradient clipping norm")
    gradient_checkpointing: bool = arg(False, "Recompute activations in backward to save memory (slower)")
    no_plan_check: bool = arg(False, "sft: skip the memory plan checked before loading (a warning, with the nearest "
                              "setting that fits, when the plan exceeds free memory; see swiftall plan)")
    save_steps: int = arg(500, "Save a checkpoint every N steps")
    save_total_limit: Optional[int] = arg(None, "Keep at most N checkpoints (oldest removed)")
    save_only_model: bool = arg(False, "Checkpoints without optimizer state (cannot be resumed exactly)")
    eval_steps: Optional[int] = arg(None, "Evaluate every N steps (default: --save_steps) when there is validation data")
    logging_steps: int = arg(5, "Log metrics every N steps")
    resume_from_checkpoint: Optional[str] = arg(None, "A checkpoint-N folder, or a run folder (its latest checkpoint)")
    report_to: list[str] = arg(["tensorboard"], "Loggers: tensorboard, wandb, swanlab, none")
    dataloader_num_workers: int = arg(0, "Worker processes feeding batches")

    def check(self) -> None:
        bad = [r for r in self.report_to if r not in ("tensorboard", "wandb", "none", "swanlab", "all")]
        if bad:
            raise ConfigError(f"--report_to: unknown logger {bad[0]!r}; use tensorboard, wandb or none")
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                     "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.eval_steps is not None and self.eval_steps < 1:
            raise ConfigError(f"--eval_steps must be at least 1, got {self.eval_steps}")
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ConfigError("set --num_train_epochs > 0 or --max_steps > 0")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ConfigError(f"--learning_rate must be > 0, got {self.learning_rate}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"--warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.weight_decay < 0 or self.max_grad_norm < 0:
            raise ConfigError("--weight_decay and --max_grad_norm must be >= 0")
        if self.save_total_limit is not None and self.save_total_limit < 1:
            raise ConfigError(f"--save_total_limit must be at least 1, got {self.save_total_limit}")

"""Configs of `swiftall plan` (memory and time of a run before it runs) and `swiftall init` (the setup wizard).
`plan` takes the same model, tuner, quantization, training and inference flags as the commands it plans."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..utils.errors import ConfigError
from .base import Config, Section, arg
from .distributed import DistributedSection
from .inference import EngineSection, GenerationSection
from .rlhf import RlhfSection
from .sections import CommonSection, DataSection, ModelSection, TemplateSection
from .training import TrainSection, TunerSection
from .tuning import QuantSection

PLANNED = ("sft", "pt", "rlhf", "dpo", "infer", "deploy")
GOALS = ("chat", "finetune", "align", "serve", "evaluate")
MODALITIES = ("text", "image", "audio", "video")


@dataclass
class MachineSection(Section):
    name = "machine"
    title = "machine (default: this one, detected)"
    device: str = arg("auto", "Plan for this device: auto (this machine's GPU, else its CPU), cpu, cuda, or a GPU "
                      "name such as H100, A100, 4090 (its memory from --memory_gb)")
    memory_gb: Optional[float] = arg(None, "Memory of that device in GB (default: detected free memory)")
    tflops: Optional[float] = arg(None, "Effective TFLOPS of the device for the time estimate (default: its data "
                                  "sheet's peak x 35% on GPUs; --calibrate measures a CPU)")

    def check(self) -> None:
        if self.memory_gb is not None and self.memory_gb <= 0:
            raise ConfigError(f"--memory_gb must be > 0, got {self.memory_gb}")
        if self.tflops is not None and self.tflops <= 0:
            raise ConfigError(f"--tflops must be > 0, got {self.tflops}")


@dataclass
class PlanSection(Section):
    name = "plan"
    title = "what is planned"
    plan_task: str = arg("sft", "The command planned (also given as the first word: swiftall plan infer ...)",
                         choices=PLANNED, aliases=("plan_command",))
    optim: str = arg("adamw_torch", "Optimizer: AdamW keeps two float32 moments per trainable weight; an 8-bit one "
                     "(adamw_bnb_8bit) two bytes", choices=("adamw_torch", "adamw_bnb_8bit", "adamw_8bit"))
    num_rows: int = arg(1000, "Rows in one epoch, for the time per epoch")
    media_per_row: int = arg(0, "Multimodal models: images/clips per row (each adds the model's media tokens)")
    calibrate: bool = arg(False, "Run 3 real training steps of this setting here and fit the time per step to them")

    def check(self) -> None:
        if self.num_rows < 1:
            raise ConfigError(f"--num_rows must be at least 1, got {self.num_rows}")
        if self.media_per_row < 0:
            raise ConfigError(f"--media_per_row must be >= 0, got {self.media_per_row}")


@dataclass
class InitSection(Section):
    name = "init"
    title = "setup wizard"
    goal: Optional[str] = arg(None, "What you want to do (asked when not given)", choices=GOALS)
    modality: Optional[str] = arg(None, "What the model reads besides text (asked when not given)",
                                  choices=MODALITIES)
    yes: bool = arg(False, "Ask nothing: take the recommended model and settings (for scripts)", aliases=("y",))
    write_config: str = arg("swiftall.yaml", "The config file written for the chosen command")
    allow_download: bool = arg(False, "Download the chosen model when it is not cached (otherwise only cached and "
                               "embedded models are offered; the size is shown before any download)")


class PlanConfig(Config):
    """Memory (by component) and time of a run, from the model's config only: no weights are loaded.
    swiftall plan [sft|pt|rlhf|dpo|infer|deploy] --model M [that command's flags] [--device D --memory_gb G]"""

    command = "plan"
    sections = (ModelSection, CommonSection, PlanSection, MachineSection, TunerSection, QuantSection, TemplateSection,
                TrainSection, RlhfSection, EngineSection, GenerationSection, DistributedSection)

    def check(self) -> None:
        if not self.section("model").given():
            raise ConfigError("swiftall plan: --model is required (a folder, a registered name such as "
                              "smollm2-135m-instruct, or a hub id)")
        if self.quant_method not in (None, "bnb"):
            raise ConfigError(f"swiftall plan: --quant_method {self.quant_method} is not planned; use bnb (QLoRA) "
                              "or leave it out")


class InitConfig(Config):
    """Set up a first run: detect the machine, pick a model that fits, write swiftall.yaml, print the command."""

    command = "init"
    sections = (ModelSection, CommonSection, InitSection, MachineSection, DataSection)
    defaults = {"dataset": ["swiftall-demo"]}

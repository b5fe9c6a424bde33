"""Config of `swiftall rlhf` (and its `swiftall dpo` shortcut): the method flags users know from ms-swift/TRL."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..utils.errors import ConfigError
from .base import Config, Section, arg
from .commands import TRAINING, MediaMixin, check_training_quant
from .inference import SamplingSection
from .training import PaddingFreeSection

RLHF_TYPES = ("dpo", "kto", "cpo", "simpo", "orpo", "rm", "ppo", "grpo", "gkd")
DPO_LOSSES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
              "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")
CPO_LOSSES = ("sigmoid", "hinge", "ipo", "simpo")
BUILTIN_REWARDS = ("accuracy", "format", "length", "repetition")
# beta's meaning differs by method; these are the defaults when --beta is not given
DEFAULT_BETA = {"dpo": 0.1, "kto": 0.1, "cpo": 0.1, "simpo": 2.0, "orpo": 0.1, "grpo": 0.04, "gkd": 0.5}


@dataclass
class RlhfSection(Section):
    name = "rlhf"
    title = "alignment method"
    rlhf_type: str = arg("dpo", "Alignment method", choices=RLHF_TYPES)
    sft_model_path: Optional[str] = arg(None, "Start from an SFT run: its adapter (merged into the base in memory) "
                                        "or its full/merged model folder; it is also the reference model")
    ref_model: Optional[str] = arg(None, "Reference model for dpo/kto/grpo/ppo with --train_type full (default: a "
                                   "frozen copy of the start model; with LoRA the base with adapters disabled)")
    eval_on_start: bool = arg(False, "Evaluate on the validation rows before the first step too, so the logs hold "
                              "the starting reward accuracy and margins (not ppo)")
    teacher_model: Optional[str] = arg(None, "Teacher for gkd (same tokenizer as --model)")
    beta: Optional[float] = arg(None, "KL/temperature strength: dpo/kto/cpo/orpo 0.1, simpo 2.0, grpo 0.04 (KL to "
                                "the reference), gkd 0.5 (JSD interpolation)")
    kl_coef: Optional[float] = arg(None, "ppo: KL penalty to the reference per token (default 0.05); for grpo "
                                   "an alias of --beta")
    label_smoothing: float = arg(0.0, "Label smoothing of robust/exo DPO losses and of CPO")
    loss_type: list[str] = arg([], "DPO: one or more of " + ", ".join(DPO_LOSSES) + " (combined with "
                               "--loss_weights); CPO: one of " + ", ".join(CPO_LOSSES) + "; KTO: kto or apo_zero_unpaired")
    loss_weights: list[float] = arg([], "Weights of several --loss_type values (default: 1 each)")
    rpo_alpha: Optional[float] = arg(None, "RPO: add the NLL loss on chosen answers with this weight (DPO)")
    simpo_gamma: float = arg(0.5, "SimPO target reward margin")
    cpo_alpha: Optional[float] = arg(None, "Weight of the NLL term in CPO (default 1.0; 0.0 for simpo)")
    desirable_weight: float = arg(1.0, "KTO: weight of desirable (label true) rows")
    undesirable_weight: float = arg(1.0, "KTO: weight of undesirable (label false) rows")
    lmbda: float = arg(0.5, "gkd: fraction of steps trained on the student's own generations (on-policy)")
    seq_kd: bool = arg(False, "gkd: sequence-level KD (train on teacher generations)")

    def check(self) -> None:
        if self.kl_coef is not None and self.rlhf_type == "grpo" and self.beta is None:
            self.beta = self.kl_coef
        if self.beta is None:
            self.beta = DEFAULT_BETA.get(self.rlhf_type)
        if self.kl_coef is None:
            self.kl_coef = 0.05
        if self.cpo_alpha is None:
            self.cpo_alpha = 0.0 if self.rlhf_type == "simpo" else 1.0
        self._check_losses()
        if self.rlhf_type == "gkd" and not self.teacher_model:
            raise ConfigError("--rlhf_type gkd needs --teacher_model (a model with the same tokenizer)")

    def _check_losses(self) -> None:
        allowed = {"dpo": DPO_LOSSES, "cpo": CPO_LOSSES, "simpo": ("simpo",),
                   "kto": ("kto", "apo_zero_unpaired")}.get(self.rlhf_type)
        if self.loss_type and allowed is None:
            raise ConfigError(f"--loss_type is not used by --rlhf_type {self.rlhf_type}")
        for loss in self.loss_type:
            if allowed and loss not in allowed:
                raise ConfigError(f"--loss_type {loss}: not a {self.rlhf_type} loss; use one of {', '.join(allowed)}")
        if self.rlhf_type != "dpo" and len(self.loss_type) > 1:
            raise ConfigError(f"--loss_type: {self.rlhf_type} takes one loss type, got {len(self.loss_type)}")
        if self.loss_weights and len(self.loss_weights) != len(self.loss_type or ["sigmoid"]):
            raise ConfigError(f"--loss_weights: {len(self.loss_weights)} weights for "
                              f"{len(self.loss_type or ['sigmoid'])} --loss_type values; give one weight each")
        if self.rpo_alpha is not None and self.rlhf_type != "dpo":
            raise ConfigError("--rpo_alpha is a DPO option; use --rlhf_type dpo")


@dataclass
class OnlineSection(Section):
    name = "online"
    title = "online methods (grpo, ppo, gkd)"
    num_generations: int = arg(4, "grpo: completions sampled per prompt (the group)")
    max_completion_length: int = arg(256, "grpo/ppo/gkd: longest generated completion in tokens")
    reward_funcs: list[str] = arg([], "grpo/ppo reward functions: built-ins " + ", ".join(BUILTIN_REWARDS) +
                                  ", or names registered by --plugin files")
    reward_model: list[str] = arg([], "Reward model folder(s) (sequence classification, e.g. a `--rlhf_type rm` run) "
                                  "for ppo and grpo")
    reward_weights: list[float] = arg([], "Weights of the rewards, in order: --reward_funcs then --reward_model "
                                      "(default: 1 each)")
    format_pattern: str = arg(r"^<think>.*?</think>\s*<answer>.*?</answer>$",
                              "Regular expression the 'format' reward checks (full match, dot matches newlines)")
    use_vllm: bool = arg(False, "grpo: generate with vLLM (GPU machines with vllm installed)")
    num_ppo_epochs: int = arg(2, "ppo: optimisation passes over each batch of rollouts", aliases=("ppo_epochs",))
    cliprange: float = arg(0.2, "ppo: clip range of the policy ratio")
    cliprange_value: float = arg(0.2, "ppo: clip range of the value function")
    vf_coef: float = arg(0.1, "ppo: weight of the value loss")
    gamma: float = arg(1.0, "ppo: discount factor of GAE")
    lam: float = arg(0.95, "ppo: lambda of GAE")

    def check(self) -> None:
        for name in ("num_generations", "max_completion_length", "num_ppo_epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.reward_weights and len(self.reward_weights) != len(self.reward_funcs) + len(self.reward_model):
            raise ConfigError(f"--reward_weights: {len(self.reward_weights)} weights for "
                              f"{len(self.reward_funcs) + len(self.reward_model)} rewards (--reward_funcs then "
                              "--reward_model); give one weight each")


class RlhfConfig(MediaMixin, Config):
    """Align a model: dpo, kto, cpo, simpo, orpo, rm (reward model), ppo, grpo or gkd."""

    command = "rlhf"
    sections = (*TRAINING, RlhfSection, PaddingFreeSection, OnlineSection, SamplingSection)
    defaults = {"temperature": 0.9, "top_p": 1.0}

    def check(self) -> None:
        check_start(self)
        if self.rlhf_type in ("grpo", "ppo", "gkd") and not self.temperature:
            raise ConfigError(f"--temperature must be > 0 for sampling completions, got {self.temperature}")
        if self.rlhf_type == "grpo" and self.num_generations < 2:
            raise ConfigError("--num_generations must be at least 2 for grpo (advantages compare completions "
                              "of one prompt)")
        self._check_rewards()

    def _check_rewards(self) -> None:
        if self.rlhf_type not in ("grpo", "ppo"):
            if self.reward_funcs:
                raise ConfigError(f"--reward_funcs is used by grpo and ppo, not --rlhf_type {self.rlhf_type}")
            return
        if not (self.reward_funcs or self.reward_model):
            raise ConfigError(f"--rlhf_type {self.rlhf_type} needs rewards: --reward_funcs (built-ins: "
                              f"{', '.join(BUILTIN_REWARDS)}; or names from --plugin) and/or --reward_model DIR")


def check_start(cfg: Config) -> None:
    """What every alignment command needs: a start model, data, and no sft-only flags."""
    for name in ("vit_lr", "aligner_lr"):
        if getattr(cfg, name) is not None:
            raise ConfigError(f"--{name}: separate learning rates are an sft option; rlhf trains every part at "
                              "--learning_rate (use --freeze_vit/--freeze_aligner to keep a part fixed)")
    if not (cfg.section("model").given() or cfg.sft_model_path):
        raise ConfigError(f"swiftall {cfg.command}: --model is required (or --sft_model_path DIR of an sft run)")
    if not cfg.dataset:
        raise ConfigError(f"swiftall {cfg.command}: --dataset is required (preference rows for "
                          "dpo/cpo/simpo/orpo/rm, rows with 'label' for kto, prompts for grpo/ppo, "
                          "conversations for gkd)")
    check_training_quant(cfg)
    if cfg.padding_free and cfg.rlhf_type != "dpo":
        raise ConfigError(f"--padding_free true: of the alignment methods only dpo runs padding-free; --rlhf_type "
                          f"{cfg.rlhf_type} pads its batches (drop --padding_free)")


class DpoConfig(MediaMixin, Config):
    """DPO (shortcut of `swiftall rlhf --rlhf_type dpo`): align a model on chosen/rejected answer pairs."""

    command = "dpo"
    sections = (*TRAINING, RlhfSection, PaddingFreeSection)

    def check(self) -> None:
        check_start(self)
        if self.rlhf_type != "dpo":
            raise ConfigError(f"swiftall dpo runs DPO only; for --rlhf_type {self.rlhf_type} use swiftall rlhf")

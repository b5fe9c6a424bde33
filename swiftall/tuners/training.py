"""What a tuner asks of the trainer: its own optimizer (LoRA+, GaLore), callbacks (LISA's layer switches,
AdaLoRA's rank budget) and whether the loss may skip untrained positions (not with virtual tokens prepended).
`build_trainer` (train/trainer.py) calls `trainer_hooks` once and passes the result to the Trainer."""
from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from .peft_tuners import PROMPT_LEARNING


class AdaLoraCallback(TrainerCallback):
    """AdaLoRA's rank allocation after each backward (it reads the gradients), over the trainer's real step count."""

    def __init__(self, model: Any):
        self.model = model

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        for config in self.model.peft_config.values():
            config.total_step = max(state.max_steps, config.tinit + config.tfinal + 1)

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.model.base_model.update_and_allocate(state.global_step)


def trainer_hooks(model: Any, args: Any, training_args: Any) -> dict[str, Any]:
    """Keyword arguments for SwiftTrainer: callbacks, optimizers, sparse_logits (may change training_args.optim)."""
    tuner = getattr(args, "train_type", "lora")
    hooks: dict[str, Any] = {"callbacks": [], "sparse_logits": tuner not in (*PROMPT_LEARNING, "adalora")}
    if tuner == "lisa":
        from .lisa import LisaCallback

        hooks["callbacks"].append(LisaCallback(model, args.lisa_activated_layers, args.lisa_step_interval,
                                               getattr(args, "seed", 42)))
    if tuner == "adalora":
        hooks["callbacks"].append(AdaLoraCallback(model))
    if getattr(args, "use_galore", False):
        from .galore import configure

        configure(training_args, args)
    if tuner == "lora" and getattr(args, "lorap_lr_ratio", None):
        import torch
        from peft.optimizers import create_loraplus_optimizer

        optimizer = create_loraplus_optimizer(model, torch.optim.AdamW, lr=training_args.learning_rate,
                                              loraplus_lr_ratio=args.lorap_lr_ratio,
                                              weight_decay=training_args.weight_decay)
        hooks["optimizers"] = (optimizer, None)
    return hooks

"""A thin transformers Trainer: token throughput and memory in the logs, swiftall's outputs on disk."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import Trainer, TrainingArguments

from ..templates import IGNORE
from .callbacks import JsonlLogger, TimeToFirstStep
from .distributed import distributed_arguments
from .checkpoints import AtomicCheckpoints
from .fsdp import CpuFsdpTrainerMixin, shard_if_asked
from .throughput import ThroughputMixin
from .watchdog import stall_callbacks


class SwiftTrainer(AtomicCheckpoints, CpuFsdpTrainerMixin, ThroughputMixin, Trainer):
    """Logs tokens per second (ThroughputMixin: real and trained tokens) and computes the causal-LM
    loss from the output head at trained positions only (the head and its softmax over the whole vocabulary are
    a large share of a small model's compute; prompt positions need neither)."""

    def __init__(self, *args: Any, sparse_logits: bool = True, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sparse_logits = sparse_logits and _accepts_logits_to_keep(self.model)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        """swiftall's own tuners (adapter, reft) save only their weights, which they load themselves."""
        load = getattr(self.model, "swiftall_load_checkpoint", None)
        if load is None:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        load(resume_from_checkpoint)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.sparse_logits and not return_outputs and "labels" in inputs and self.label_smoother is None:
            if model.training:
                self.count_batch(inputs)  # ThroughputMixin.compute_loss is not on this path
            return self._sparse_loss(model, inputs, num_items_in_batch)
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

    def _sparse_loss(self, model, inputs, num_items_in_batch):
        import torch.nn.functional as F

        labels = inputs["labels"]
        targets = labels[:, 1:]
        keep = (targets != IGNORE).any(dim=0).nonzero().squeeze(-1)  # positions whose next token is trained
        outputs = model(**{k: v for k, v in inputs.items() if k != "labels"}, logits_to_keep=keep)
        logits = outputs.logits.float()
        picked = targets[:, keep]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), picked.reshape(-1), ignore_index=IGNORE,
                               reduction="sum")
        if num_items_in_batch is None:
            return loss / (picked != IGNORE).sum().clamp(min=1)
        loss = loss / num_items_in_batch
        if self.args.average_tokens_across_devices:
            loss = loss * self.accelerator.num_processes
        return loss


def _accepts_logits_to_keep(model: Any) -> bool:
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(base, "swiftall_fused_loss", False):  # --use_liger_kernel: the forward's fused linear cross-entropy
        return False
    return "logits_to_keep" in inspect.signature(base.forward).parameters and getattr(
        base, "accepts_loss_kwargs", True)


def training_arguments(cfg: Any, output_dir: Path, has_eval: bool) -> TrainingArguments:
    import torch

    dtype = getattr(cfg, "resolved_dtype", None)
    lr = cfg.learning_rate if cfg.learning_rate is not None else (1e-4 if cfg.train_type != "full" else 1e-5)
    eval_steps = cfg.eval_steps or cfg.save_steps
    report_to = [] if cfg.report_to in (["none"], []) else list(cfg.report_to)
    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=lr,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=float(cfg.warmup_ratio),  # transformers 5: a float in [0, 1) is a ratio
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        gradient_checkpointing=cfg.gradient_checkpointing,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        save_only_model=cfg.save_only_model,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=eval_steps if has_eval else None,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        report_to=report_to,
        seed=cfg.seed,
        data_seed=cfg.data_seed,
        bf16=dtype == torch.bfloat16,
        fp16=dtype == torch.float16,
        train_sampling_strategy="group_by_length" if getattr(cfg, "group_by_length", True) else "random",
        dataloader_num_workers=cfg.dataloader_num_workers,
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),
        remove_unused_columns=False,
        disable_tqdm=False,
        torch_compile=bool(getattr(cfg, "torch_compile", False)),
        **distributed_arguments(cfg, on_cpu=not torch.cuda.is_available()),  # --ddp_*, --deepspeed, --fsdp
    )


def build_trainer(model: Any, tokenizer: Any, cfg: Any, train: list, val: list, collator: Any,
                  output_dir: Path, started: float, family: Any = None) -> SwiftTrainer:
    args = training_arguments(cfg, output_dir, has_eval=bool(val))
    model = shard_if_asked(model, cfg, args)  # --fsdp on CPU: fully_shard applied by swiftall (train/fsdp.py)
    first = TimeToFirstStep(started)
    optimizer_kwargs = {}
    if getattr(cfg, "vit_lr", None) is not None or getattr(cfg, "aligner_lr", None) is not None:
        import torch

        from ..tuners.freeze import param_groups

        groups = param_groups(model, cfg, family, args.learning_rate, args.weight_decay)
        optimizer_kwargs["optimizer_cls_and_kwargs"] = (torch.optim.AdamW, {"params": groups})
    from ..tuners.training import trainer_hooks

    hooks = trainer_hooks(model, cfg, args)  # the tuner's optimizer (LoRA+, GaLore) and callbacks (LISA, AdaLoRA)
    trainer = SwiftTrainer(model=model, args=args, train_dataset=train, eval_dataset=val or None,
                           data_collator=collator, processing_class=tokenizer,
                           callbacks=[JsonlLogger(output_dir), first, *hooks.pop("callbacks"),
                                      *stall_callbacks(cfg, output_dir)], **optimizer_kwargs,
                           **hooks)
    trainer.first_step_callback = first
    return trainer

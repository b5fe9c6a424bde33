"""Offline preference methods on TRL: DPO (all of TRL's loss variants, RPO), CPO, SimPO, ORPO and KTO."""
from __future__ import annotations

from typing import Any

from .common import AlignSetup, callbacks, lora_config, small_lm_head_tiles, to_dataset, trl_args, with_throughput


def _common(setup: AlignSetup) -> dict[str, Any]:
    small_lm_head_tiles(setup.model)
    return {"train_dataset": to_dataset(setup.train), "eval_dataset": to_dataset(setup.val) if setup.val else None,
            "processing_class": setup.tokenizer, "callbacks": callbacks(setup),
            "peft_config": lora_config(setup.cfg, getattr(setup.info, "family", None))}


def dpo_losses(cfg: Any) -> tuple[list[str], list[float] | None]:
    """--loss_type/--loss_weights, plus RPO's NLL term on chosen answers (TRL's 'sft' loss) for --rpo_alpha."""
    losses = list(cfg.loss_type) or ["sigmoid"]
    weights = list(cfg.loss_weights) or None
    if cfg.rpo_alpha is not None and cfg.rpo_alpha > 0:
        weights = weights or [1.0] * len(losses)
        if "sft" in losses:
            weights[losses.index("sft")] = cfg.rpo_alpha
        else:
            losses.append("sft")
            weights.append(cfg.rpo_alpha)
    return losses, weights


def build_dpo(setup: AlignSetup) -> Any:
    from trl import DPOConfig, DPOTrainer

    cfg = setup.cfg
    losses, weights = dpo_losses(cfg)
    args = trl_args(DPOConfig, setup, beta=cfg.beta, label_smoothing=cfg.label_smoothing, loss_type=losses,
                    loss_weights=weights, max_length=cfg.max_length)
    return with_throughput(DPOTrainer)(model=setup.model, ref_model=setup.ref_model, args=args, **_common(setup))


def build_cpo(setup: AlignSetup) -> Any:
    """CPO; with --rlhf_type simpo, CPO's SimPO loss (reference-free, length-normalised, margin --simpo_gamma)."""
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    cfg = setup.cfg
    loss = "simpo" if cfg.rlhf_type == "simpo" else (cfg.loss_type[0] if cfg.loss_type else "sigmoid")
    args = trl_args(CPOConfig, setup, beta=cfg.beta, label_smoothing=cfg.label_smoothing, loss_type=loss,
                    cpo_alpha=cfg.cpo_alpha, simpo_gamma=cfg.simpo_gamma, max_length=cfg.max_length,
                    max_completion_length=cfg.max_length)
    return with_throughput(CPOTrainer)(model=setup.model, args=args, **_common(setup))


def build_orpo(setup: AlignSetup) -> Any:
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    cfg = setup.cfg
    args = trl_args(ORPOConfig, setup, beta=cfg.beta, max_length=cfg.max_length, max_completion_length=cfg.max_length)
    return with_throughput(ORPOTrainer)(model=setup.model, args=args, **_common(setup))


def build_kto(setup: AlignSetup) -> Any:
    from trl import KTOConfig, KTOTrainer

    cfg = setup.cfg
    loss = cfg.loss_type[0] if cfg.loss_type else "kto"
    extra = {"train_sampling_strategy": "sequential"} if loss == "kto" else {}
    args = trl_args(KTOConfig, setup, beta=cfg.beta, loss_type=loss, desirable_weight=cfg.desirable_weight,
                    undesirable_weight=cfg.undesirable_weight, max_length=cfg.max_length, **extra)
    return with_throughput(KTOTrainer)(model=setup.model, ref_model=setup.ref_model, args=args, **_common(setup))

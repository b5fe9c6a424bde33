"""Offline preference methods on TRL: DPO (all of TRL's loss variants, RPO), CPO, SimPO, ORPO and KTO.

DPO rows with images (or audio/video) are encoded by swiftall's multimodal template -- the encoding sft, infer and
deploy use -- through MediaPairCollator, and reach TRL's DPOTrainer as its vision-language batches (TRL then skips
its own text tokenization); the rlhf pipeline refuses media rows for the other methods.
"""
from __future__ import annotations

from typing import Any

from ...templates import IGNORE
from ...utils.errors import ConfigError
from .common import AlignSetup, callbacks, lora_config, small_lm_head_tiles, to_dataset, trl_args, with_throughput

MEDIA = ("images", "audios", "videos")


def _common(setup: AlignSetup) -> dict[str, Any]:
    small_lm_head_tiles(setup.model)
    return {"train_dataset": to_dataset(setup.train), "eval_dataset": to_dataset(setup.val) if setup.val else None,
            "processing_class": setup.tokenizer, "callbacks": callbacks(setup),
            "peft_config": lora_config(setup.cfg, getattr(setup.info, "family", None), model=setup.model)}


def has_media(rows: list[dict]) -> bool:
    return any(row.get(k) for row in rows for k in MEDIA)


class MediaPairCollator:
    """DPO batches from rows with media: each pair encoded twice by swiftall's template (prompt + chosen, prompt +
    rejected, with the row's media), chosen rows first as TRL's DPOTrainer expects; `completion_mask` marks the
    answer tokens (the template's labels), and the processor's inputs (pixel values, grid sizes, ...) come along."""

    def __init__(self, template: Any):
        self.template = template
        self.pad = template.collator()

    def __call__(self, examples: list[dict]) -> dict[str, Any]:
        rows = []
        for side in ("chosen", "rejected"):
            for example in examples:
                media = {k: example[k] for k in MEDIA if example.get(k)} or None
                encoded = self.template.encode(example["prompt"] + example[side], media=media)
                extra = {k: v for k, v in encoded.extra.items() if k != "truncated_from"}
                rows.append({"input_ids": encoded.input_ids, "labels": encoded.labels, **extra})
        batch = self.pad(rows)
        batch["completion_mask"] = (batch.pop("labels") != IGNORE).long()
        return batch


def _media_rows(setup: AlignSetup) -> dict[str, Any]:
    """DPO on rows with media (the data layer lets media through for multimodal models only): the processor as
    TRL's processing class, swiftall's encoding as the collator."""
    for rows in (setup.train, setup.val):
        for row in rows:  # TRL takes rows with an `images` column down its vision-language path
            row.setdefault("images", [])
    return {"processing_class": setup.template.processor, "data_collator": MediaPairCollator(setup.template)}


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
    media = has_media(setup.train + setup.val)
    args = trl_args(DPOConfig, setup, beta=cfg.beta, label_smoothing=cfg.label_smoothing, loss_type=losses,
                    loss_weights=weights, max_length=cfg.max_length,
                    **({"remove_unused_columns": False} if media else {}))  # the collator reads audios/videos too
    kwargs = {**_common(setup), **(_media_rows(setup) if media else {})}
    packed = _packs_pairs(cfg, media, setup.model)
    trainer_cls = with_throughput(_paired(DPOTrainer) if packed else DPOTrainer)
    trainer = trainer_cls(model=setup.model, ref_model=setup.ref_model, args=args, **kwargs)
    if packed:
        from .shared_prefix import install

        install(trainer.model)
        if trainer.ref_model is not None:
            install(trainer.ref_model)
    return trainer


def _packs_pairs(cfg: Any, media: bool, model: Any) -> bool:
    """--padding_free (default on for text pairs): each pair's shared prompt computed once (shared_prefix.py)."""
    from .shared_prefix import takes_custom_masks

    if cfg.padding_free is False:
        return False
    why = None
    if media:
        why = "DPO rows with images/audio/video run as padded batches (the processor's inputs follow each row)"
    elif not takes_custom_masks(model):
        why = (f"DPO pairs run padding-free with --attn_impl sdpa or eager (a custom attention mask per pair); this "
               f"model uses {getattr(model.config, '_attn_implementation', None)}")
    if why and cfg.padding_free:
        raise ConfigError(f"--padding_free true: {why}; drop the flag or pass --padding_free false")
    return why is None


def _paired(trainer_cls: type) -> type:
    """The DPO trainer whose loss and reference passes read each batch as (chosen, rejected) pairs."""
    from .shared_prefix import paired_batches

    class PairedDPOTrainer(trainer_cls):
        def _compute_loss(self, model, inputs, return_outputs):
            with paired_batches():
                return super()._compute_loss(model, inputs, return_outputs)

        def compute_ref_log_probs(self, model, inputs):
            with paired_batches():
                return super().compute_ref_log_probs(model, inputs)

    PairedDPOTrainer.__name__ = PairedDPOTrainer.__qualname__ = f"Paired{trainer_cls.__name__}"
    return PairedDPOTrainer



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

"""swiftall rlhf / swiftall dpo: align a model with dpo, kto, cpo, simpo, orpo, rm, ppo, grpo or gkd.

Same shape as sft: config -> resolve (--output_dir checked, nothing written) -> tokenizer/template -> data (errors
before the model loads) -> output dir + args.json -> model (+ the SFT adapter merged in memory) -> reference -> trainer
-> save + plots + summary. A run that fails its checks leaves no folder behind.
"""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any, Optional

from ..config import DpoConfig, RlhfConfig
from ..data.preference import build_align_data
from ..models import load_model, load_tokenizer, resolve_model
from ..models.device import resolve_dtype
from ..templates import get_template
from ..train.outputs import check_output_dir, prepare_output_dir, resolve_resume
from ..train.plots import write_plots
from ..train.rlhf import METHODS, build_alignment_trainer
from ..train.rlhf.common import AlignSetup
from ..train.rlhf.offline import has_media
from ..train.speed import fast_lora_dropout
from ..train.rlhf.rewards import check_reward_columns
from ..tuners.compat import check_compat
from ..tuners.freeze import freeze_parts
from ..tuners.peft_compat import skip_unused_gptq_probe
from ..tuners.runs import agreed_base, read_run
from ..utils.env import is_main_process
from ..utils.errors import ConfigError
from ..utils.log import get_logger
from ..utils.plugins import load_plugins
from .common import counted, model_info, names_a_model, seed_everything, take_base_from_run

logger = get_logger(__name__)
CURVES = {"rewards/chosen": "reward of chosen", "rewards/rejected": "reward of rejected",
          "rewards/margins": "reward margin (chosen - rejected)", "rewards/accuracies": "reward accuracy",
          "accuracy": "reward-model accuracy", "margin": "reward-model margin", "reward": "mean reward",
          "kl": "KL to the reference", "nll_loss": "NLL of chosen"}


def rlhf_main(config: Any = None) -> dict[str, Any]:
    """Run an alignment method; returns a summary (output_dir, steps, loss, the last logged method metrics)."""
    return _run(RlhfConfig.from_any(config))


def dpo_main(config: Any = None) -> dict[str, Any]:
    """`swiftall dpo`: rlhf with --rlhf_type dpo."""
    return _run(DpoConfig.from_any(config))


def _start_model(cfg: Any) -> tuple[str, ...]:
    """--sft_model_path RUN: a full run becomes --model; a LoRA run gives the base model (when --model is not given;
    --model_type stays the family) and is merged into it in memory, after the adapters it was itself trained on.
    Returns the adapters to merge, in order."""
    check_compat(cfg, "rlhf")  # tuner x quantization x checkpointing x distributed, before anything loads
    if not cfg.sft_model_path:
        return ()
    run = read_run(cfg.sft_model_path, f"--sft_model_path {cfg.sft_model_path}")
    if run.kind == "full":
        cfg.model = str(run.folder)
        return ()
    if not cfg.model and not names_a_model(cfg.model_type):
        take_base_from_run(cfg, agreed_base([(f"--sft_model_path {cfg.sft_model_path}", run)]))
    return (*run.start_adapters, str(run.folder.resolve()))


def _load(info: Any, cfg: Any, auto_class: str, start: tuple[str, ...]) -> Any:
    if auto_class == "AutoModelForSequenceClassification":
        from ..models.device import default_device
        from ..train.rlhf.reward import load_sequence_classifier

        model = load_sequence_classifier(info.path, dtype=resolve_dtype(cfg.torch_dtype), device=default_device())
    else:
        from ..tuners.quant import load_base

        model = load_base(info, cfg)  # quantized with --quant_method (QLoRA)
    if start:
        from peft import PeftModel

        for adapter in start:
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
            logger.info(f"merged the SFT adapter {adapter} into the start model")
    return model


def _reference(cfg: Any, model: Any, needs_ref: bool) -> Any:
    """An explicit reference (--ref_model), or a frozen copy for full fine-tuning; None with LoRA (adapters off)."""
    if not needs_ref:
        return None
    if cfg.ref_model:
        ref = load_model(resolve_model(cfg.ref_model, hub=cfg.hub), cfg.torch_dtype, cfg.attn_impl,
                         cfg.trust_remote_code)
    elif cfg.train_type == "full":
        ref = copy.deepcopy(model)
    else:
        return None
    return ref.eval().requires_grad_(False)


def _run(cfg: Any) -> dict[str, Any]:
    started = time.time()
    load_plugins(cfg.plugin)  # before the model, data and rewards are resolved
    method = METHODS[cfg.rlhf_type]
    start, resume, info, tokenizer, template, data = _checked_inputs(cfg, method)
    output_dir = prepare_output_dir(cfg.output_dir, info.name, cfg.overwrite_output_dir, resume)  # checks passed
    cfg.output_dir = str(output_dir)
    saved = {"command": cfg.command, **cfg.to_dict(), "model_path": str(Path(info.path).resolve()),
             "start_adapters": list(start)}  # what infer/export merge before this run's adapter
    if is_main_process():  # one writer of the run's files in a multi-process run
        (output_dir / "args.json").write_text(json.dumps(saved, indent=2, default=str) + "\n")

    cfg.resolved_dtype = resolve_dtype(cfg.torch_dtype)
    skip_unused_gptq_probe()  # before peft wraps layers (here or inside TRL's trainer)
    seed_everything(cfg.seed)  # peft's initial weights (made inside TRL's trainer, before it seeds) follow --seed
    model = _load(info, cfg, method.auto_class, start)
    if cfg.train_type == "full" and cfg.rlhf_type != "ppo":  # as sft: --freeze_vit/--freeze_aligner/--freeze_llm
        freeze_parts(model, cfg, getattr(info, "family", None))
    setup = AlignSetup(cfg=cfg, model=model, tokenizer=tokenizer, template=template, train=data.train, val=data.val,
                       output_dir=output_dir, started=started, info=info,
                       ref_model=_reference(cfg, model, method.needs_ref and cfg.rlhf_type != "grpo"),
                       load=lambda path: load_model(resolve_model(path, hub=cfg.hub), cfg.torch_dtype, cfg.attn_impl,
                                                    cfg.trust_remote_code))
    trainer = build_alignment_trainer(setup, **_rollouts(cfg, tokenizer, template))
    fast_lora_dropout(trainer.model, cfg)  # the LoRA TRL applied: cheap dropout masks on CPU (--fast_dropout)
    logger.info(f"{cfg.rlhf_type}: {len(data.train)} training rows, {len(data.val)} validation rows; model "
                f"{info.name} ({info.path})")
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    trainer.save_model(str(output_dir))
    trainer.save_state()
    if is_main_process():
        tokenizer.save_pretrained(str(output_dir))
    return _summary(cfg, trainer, result, data, output_dir, started)


def _checked_inputs(cfg: Any, method: Any) -> tuple:
    """Everything that can be wrong with the command, checked before any folder is written or model loaded."""
    if cfg.rlhf_type == "kto" and (cfg.loss_type or ["kto"])[0] == "kto" and cfg.per_device_train_batch_size < 2:
        raise ConfigError("kto: --per_device_train_batch_size must be at least 2 (KTO's KL term pairs each row with "
                          "another row of its batch)")
    start = _start_model(cfg)
    resume = resolve_resume(cfg.resume_from_checkpoint)
    check_output_dir(cfg.output_dir, cfg.overwrite_output_dir, resume)  # before anything loads; writes nothing
    info = model_info(cfg)
    tokenizer = load_tokenizer(info, cfg.trust_remote_code)
    template = get_template(tokenizer, info, system=cfg.system, max_length=cfg.max_length,
                            truncation_strategy=cfg.truncation_strategy, **cfg.media_options())
    data = build_align_data(cfg, template, method.data)  # all data errors surface before the model loads
    if cfg.rlhf_type != "dpo" and has_media(data.train + data.val):
        raise ConfigError(f"--rlhf_type {cfg.rlhf_type}: rows with images/audios/videos are supported by --rlhf_type "
                          "dpo (and sft); use dpo, or drop the media columns for a text-only run")
    if cfg.rlhf_type in ("grpo", "ppo"):
        check_reward_columns(cfg, data.train + data.val)
    return start, resume, info, tokenizer, template, data


def _rollouts(cfg: Any, tokenizer: Any, template: Any) -> dict[str, Any]:
    """ppo/grpo completions come from swiftall's pt Engine over the policy being trained."""
    if cfg.rlhf_type not in ("ppo", "grpo"):
        return {}
    from ..infer.rollout import rollout_factory

    batch = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps
    return {"rollout_factory": rollout_factory(tokenizer, template, max_batch_size=batch)}


def _summary(cfg: Any, trainer: Any, result: Any, data: Any, output_dir: Path, started: float) -> dict[str, Any]:
    plots = write_plots(output_dir, CURVES)
    summary = {
        "output_dir": str(output_dir),
        "rlhf_type": cfg.rlhf_type,
        "global_step": trainer.state.global_step,
        "train_loss": result.training_loss,
        "train_runtime_s": round(time.time() - started, 2),
        "time_to_first_step_s": _first_step_s(trainer),
        "plots": [str(p) for p in plots],
        "rows": {"train": len(data.train), "val": len(data.val), "dropped": sum(data.report.dropped.values())},
    }
    logger.info(f"done: {counted(summary['global_step'], cfg.rlhf_type + ' step')}; the "
                f"{'adapter' if cfg.train_type != 'full' else 'model'}, checkpoints, args.json, logging.jsonl and "
                f"plots are in {output_dir}")
    return summary


def _first_step_s(trainer: Any) -> Optional[float]:
    from ..train.callbacks import TimeToFirstStep

    found = getattr(trainer, "first_step_callback", None)
    if found is None and hasattr(trainer, "callback_handler"):
        found = next((c for c in trainer.callback_handler.callbacks if isinstance(c, TimeToFirstStep)), None)
    return found.first_step_s if found else None

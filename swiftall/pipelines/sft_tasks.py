"""swiftall sft --task_type seq_cls|embedding|reranker: the same flags, tuners, data sources and outputs as sft, a
different model head, loss and evaluation. Everything the data or flags can get wrong fails before weights load."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..models import load_tokenizer
from ..models.device import default_device, resolve_attn, resolve_dtype
from ..models.tasks import TaskSpec, hidden_size, load_task_model, peft_task_type
from ..templates.task_media import media_encoder
from ..train.outputs import check_output_dir, create_output_dir, output_dir_for, resolve_resume, say_how_to_resume
from ..train.plots import write_plots
from ..train.tasks.data import build_task_data
from ..train.tasks.trainer import build_task_trainer
from ..tuners import count_parameters
from ..utils.env import is_main_process
from ..utils.errors import ConfigError
from ..utils.log import get_logger
from .common import counted, model_info

logger = get_logger(__name__)
PEFT_TUNERS = ("lora", "adalora", "ia3", "vera", "boft", "oft", "fourierft", "loha", "lokr")


def check_task_flags(cfg: Any) -> None:
    """What the flags alone decide, before anything is read."""
    where = f"--task_type {cfg.task_type}"
    if cfg.command != "sft":
        raise ConfigError(f"{where} is trained with swiftall sft, not swiftall {cfg.command}")
    if cfg.train_type not in ("full", *PEFT_TUNERS):
        raise ConfigError(f"{where} trains with --train_type full or a peft tuner ({', '.join(PEFT_TUNERS)}), not "
                          f"{cfg.train_type}")
    if getattr(cfg, "quant_method", None):
        raise ConfigError(f"{where} does not load quantized bases; leave --quant_method out")
    if cfg.packing:
        raise ConfigError(f"{where}: --packing is for causal LM rows; leave it out")


def check_mrl_dims(cfg: Any, path: Path) -> None:
    size = hidden_size(path)
    too_big = [d for d in cfg.mrl_dims if size and d > size]
    if too_big:
        raise ConfigError(f"--mrl_dims {','.join(map(str, too_big))} is larger than the model's hidden size {size} "
                          f"(a vector has {size} dimensions); use dimensions up to {size}")


def task_main(cfg: Any, started: float) -> dict[str, Any]:
    check_task_flags(cfg)
    resume = resolve_resume(cfg.resume_from_checkpoint)
    check_output_dir(cfg.output_dir, cfg.overwrite_output_dir, resume)
    info = model_info(cfg)
    check_mrl_dims(cfg, Path(info.path))
    output_dir = output_dir_for(cfg.output_dir, info.name, resume)
    cfg.output_dir = str(output_dir)
    spec = TaskSpec.from_config(cfg)
    tokenizer = load_tokenizer(info, cfg.trust_remote_code)  # a multimodal model's: its processor attached
    media = media_encoder(tokenizer, info, cfg.max_length, cfg.media_options()) if spec.task_type == "embedding" \
        else None
    data = build_task_data(cfg, tokenizer, spec, media)  # bad rows stop here, before the model loads
    create_output_dir(output_dir)
    _write_run_files(cfg, info, spec, output_dir)
    cfg.resolved_dtype = resolve_dtype(cfg.torch_dtype)
    model = load_task_model(info.path, spec, cfg.resolved_dtype, resolve_attn(cfg.attn_impl), cfg.trust_remote_code,
                            tokenizer.pad_token_id).to(default_device())
    model = apply_task_tuner(model, cfg, info.family)
    trainable, total = count_parameters(model)
    logger.info(f"{cfg.task_type} model {info.name}; trainable parameters {trainable:,} of {total:,}")
    trainer = build_task_trainer(model, tokenizer, cfg, spec, data, output_dir, started, media)
    before = trainer.evaluate() if data.val else {}
    try:
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except KeyboardInterrupt:
        say_how_to_resume(output_dir)
        raise
    trainer.save_model(str(output_dir))
    trainer.save_state()
    if is_main_process():
        spec.save(output_dir)
    after = (_last_eval(trainer) or trainer.evaluate()) if data.val else {}
    plots = [str(p) for p in write_plots(output_dir)]
    logger.info(f"done: {counted(trainer.state.global_step, 'step')}; {cfg.task_type} model in {output_dir}"
                + (f"; validation {_brief(before)} -> {_brief(after)}" if after else ""))
    return {"output_dir": str(output_dir), "global_step": trainer.state.global_step,
            "train_loss": result.training_loss, "eval_before": before, "eval": after,
            "train_runtime_s": round(time.time() - started, 2), "plots": plots,
            "rows": {"train": len(data.train), "val": len(data.val), "dropped": data.report.n_dropped}}


def _last_eval(trainer: Any) -> dict[str, float]:
    """The evaluation the trainer ran at its last step, if it did (no second pass over the validation set)."""
    for entry in reversed(trainer.state.log_history):
        if entry.get("step") == trainer.state.global_step and any(k.startswith("eval_") for k in entry):
            return {k: v for k, v in entry.items() if k.startswith("eval_")}
    return {}


def _brief(metrics: dict[str, float]) -> str:
    keys = ("eval_accuracy", "eval_mse", "eval_recall@1", "eval_mrr")
    return ", ".join(f"{k[5:]} {metrics[k]:.3f}" for k in keys if k in metrics)


def _write_run_files(cfg: Any, info: Any, spec: TaskSpec, output_dir: Path) -> None:
    if not is_main_process():  # one writer of the run's files in a multi-process run
        return
    data = {"command": "sft", **cfg.to_dict(), "model_path": str(Path(info.path).resolve())}
    (output_dir / "args.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    spec.save(output_dir)


def apply_task_tuner(model: Any, cfg: Any, family: Any) -> Any:
    """full: every weight trains; a peft tuner: its adapters, plus the classifier head (peft's SEQ_CLS task keeps
    `score` trained and saved with the adapter, i.e. in modules_to_save)."""
    if cfg.train_type == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    from peft import get_peft_model

    from ..tuners.peft_tuners import peft_config

    config = peft_config(cfg, model, backbone_family(model, family),
                         task_type=peft_task_type(TaskSpec.from_config(cfg)))
    try:
        return get_peft_model(model, config)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ConfigError(f"--train_type {cfg.train_type} on this {cfg.task_type} model: {exc}") from None


def backbone_family(model: Any, family: Any) -> Any:
    """A multimodal family names its parts as they sit in its *ForConditionalGeneration model ("model.visual",
    "model.language_model"); an embedding model is that model's inner backbone (AutoModel), whose names have no
    "model." in front. The family with its prefixes as this model names them (so --freeze_vit and LoRA's
    all-linear targets find the parts)."""
    if family is None or not getattr(family, "multimodal", False):
        return family
    import dataclasses

    names = {name for name, _ in model.named_modules()}

    def local(prefixes: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(p[len("model."):] if p not in names and p.startswith("model.") and p[len("model."):] in names
                     else p for p in prefixes)

    return dataclasses.replace(family, vision_tower=local(family.vision_tower), aligner=local(family.aligner),
                               language_model=local(family.language_model))

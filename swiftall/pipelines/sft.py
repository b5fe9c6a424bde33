"""swiftall sft: fine-tune a model on conversation data."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..config import SftConfig
from ..data import PadCollator, build_datasets
from ..data.collator import PaddingFreeCollator, pack_rows
from .eval_training import attach_training_eval, load_training_tasks
from ..models import load_tokenizer
from ..models.device import resolve_dtype
from ..templates import get_template
from ..train.outputs import check_output_dir, create_output_dir, output_dir_for, resolve_resume, \
    say_how_to_resume
from ..train.plots import write_plots
from ..train.speed import apply_speed_options
from ..train.trainer import build_trainer
from ..train.varlen import use_varlen_attention
from ..tuners import apply_tuner, count_parameters
from ..tuners.compat import check_compat
from ..tuners.quant import check_quant, load_base
from ..utils.env import is_main_process
from ..utils.log import get_logger
from ..utils.plugins import load_plugins
from .common import counted, model_info, seed_everything
from .plan import check_plan_before_loading
from .sft_tasks import task_main

logger = get_logger(__name__)


def sft_main(config: Any = None) -> dict[str, Any]:
    """Run a fine-tune; returns a summary (output_dir, steps, losses, tokens)."""
    started = time.time()
    cfg = SftConfig.from_any(config)
    load_plugins(cfg.plugin)  # before the model and data are resolved: plugins may register both
    if getattr(cfg, "task_type", "causal_lm") != "causal_lm":  # seq_cls, embedding, reranker
        return task_main(cfg, started)
    resume = resolve_resume(cfg.resume_from_checkpoint)
    check_output_dir(cfg.output_dir, cfg.overwrite_output_dir, resume)  # before anything loads; writes nothing
    check_compat(cfg, cfg.command)  # tuner x quantization x checkpointing x distributed, before anything loads
    info = model_info(cfg)
    check_quant(cfg, info.path)
    check_plan_before_loading(cfg, info.path, logger)  # a warning when the plan exceeds free memory
    output_dir = output_dir_for(cfg.output_dir, info.name, resume)
    cfg.output_dir = str(output_dir)

    tokenizer = load_tokenizer(info, cfg.trust_remote_code)
    template = get_template(tokenizer, info, system=cfg.system, max_length=cfg.max_length,
                            truncation_strategy=cfg.truncation_strategy, **cfg.media_options())
    resolve_padding_free(cfg, info, template)
    data = build_datasets(cfg, template, task="pt" if cfg.command == "pt" else "sft")  # errors before the model loads
    scoring = load_training_tasks(cfg)  # --eval_dataset, scored by generation every --eval_steps; checked here too
    create_output_dir(output_dir)  # only now: a run that fails its checks leaves no folder behind
    # the resolved config that runs; model_path absolute, so runs resolve their base from any folder
    if is_main_process():  # one writer of the run's files in a multi-process run
        _save_args(cfg.to_dict() | {"model_path": str(Path(info.path).resolve())}, output_dir)

    cfg.resolved_dtype = resolve_dtype(cfg.torch_dtype)
    seed_everything(cfg.seed)  # the tuner's initial weights follow --seed (a second run in one process too)
    model = load_base(info, cfg)  # quantized with --quant_method (QLoRA)
    model.config.use_cache = False  # training needs no KV cache (and packed rows rely on its absence)
    model = apply_tuner(model, cfg, info.family, train_rows=data.train)
    apply_speed_options(model, cfg)  # --lean_lora, --use_liger_kernel
    trainable, total = count_parameters(model)
    logger.info(f"model {info.name} ({info.path}); trainable parameters {trainable:,} of {total:,} "
                f"({100 * trainable / total:.2f}%)")
    train_rows, collator = batching(cfg, template, tokenizer, data.train)
    varlen = isinstance(collator, PaddingFreeCollator) and use_varlen_attention(model)
    trainer = build_trainer(model, tokenizer, cfg, train_rows, data.val, collator, output_dir, started,
                            family=info.family)
    attach_training_eval(trainer, scoring, template, output_dir)
    try:
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except KeyboardInterrupt:
        say_how_to_resume(output_dir)
        raise
    if varlen:  # saved models name a standard attention implementation
        (model.get_base_model() if hasattr(model, "get_base_model") else model).set_attn_implementation("sdpa")
    trainer.save_model(str(output_dir))
    trainer.save_state()
    summary = _summary(trainer, result, data, output_dir, started)
    logger.info(f"done: {counted(summary['global_step'], 'step')}; the "
                f"{'adapter' if cfg.train_type != 'full' else 'model'}, checkpoints, args.json, logging.jsonl and "
                f"plots are in {output_dir}")
    return summary


def _summary(trainer: Any, result: Any, data: Any, output_dir: Path, started: float) -> dict[str, Any]:
    """What sft_main returns: the run's folder, steps, losses, time and tokens (the plots written first)."""
    plots = write_plots(output_dir)
    return {
        "output_dir": str(output_dir),
        "global_step": trainer.state.global_step,
        "train_loss": result.training_loss,
        "train_loop_s": result.metrics.get("train_runtime"),
        "train_runtime_s": round(time.time() - started, 2),
        "time_to_first_step_s": trainer.first_step_callback.first_step_s,
        "tokens": trainer.total_tokens,
        "trained_tokens": trainer.total_trained_tokens,
        "plots": [str(p) for p in plots],
        "rows": {"train": len(data.train), "val": len(data.val), "dropped": sum(data.report.dropped.values())},
    }


def batching(cfg: SftConfig, template: Any, tokenizer: Any, rows: list) -> tuple[list, Any]:
    """Rows and collator for --packing / --padding_free / padded batches."""
    make_collator = getattr(template, "collator", None)
    if make_collator is not None:  # multimodal templates batch their media tensors themselves
        return rows, make_collator()
    if cfg.packing:
        packed = pack_rows(rows, cfg.max_length)
        logger.info(f"packing: {len(rows)} samples into {len(packed)} rows of at most {cfg.max_length} tokens")
        return packed, PaddingFreeCollator()
    if cfg.padding_free:
        return rows, PaddingFreeCollator()
    return rows, PadCollator(tokenizer.pad_token_id)


def resolve_padding_free(cfg: SftConfig, info: Any, template: Any) -> None:
    """--padding_free unset: on for registered text families (exact, per-sample attention; measured fastest on the
    SFT benchmark, see benchmarks/bench_sft.py); padded, length-grouped batches elsewhere."""
    if cfg.padding_free is None:
        family = info.family
        cfg.padding_free = bool(family and family.padding_free and not family.multimodal
                                and not hasattr(template, "collator"))
    if cfg.padding_free or cfg.packing:
        cfg.group_by_length = False  # no padding to save; keep the random sample order


def _save_args(data: dict[str, Any], output_dir) -> None:
    import json

    (output_dir / "args.json").write_text(json.dumps({"command": "sft", **data}, indent=2, default=str) + "\n")

"""Evaluation during training: `swiftall sft ... --eval_dataset NAME#N --eval_steps K` scores the model being
trained every K steps (and at the last step; with --eval_dataset_on_start also before the first) with swiftall
eval's native evaluator, through a pt engine built on the training model itself (no copy, no reload).

The rule for the two kinds of evaluation in sft:
- `--val_dataset` (or `--split_dataset_ratio`): the validation *loss*, transformers' evaluation (`eval_loss`);
- `--eval_dataset`: benchmarks (`swiftall eval --list`, `gsm8k#50`) or eval-format files, *answered by generation*
  and scored with their metrics (exact match, accuracy, BLEU, ...), each with its 95% interval.
Both run every `--eval_steps` (default `--save_steps`). ms-swift's `--eval_use_evalscope` is accepted; the scoring
is native either way.

Each score is logged as `eval_<dataset>/<metric>` (logging.jsonl, TensorBoard's `eval/<dataset>/<metric>`, and a
plot in images/); each evaluation's full report (intervals, predictions item by item) is written to
`<output_dir>/eval/step-<N>/`, as `swiftall eval` writes its runs.

With several processes every process enters each scoring, as transformers' own evaluation: rank 0 generates (under
ZeRO-3 with the whole weights, which every process gathers first) while the others wait for its scores, then all
log them, and an error on rank 0 stops every process."""
from __future__ import annotations

import contextlib
import time
import types
from pathlib import Path
from typing import Any, Optional

from transformers import TrainerCallback

from ..utils.errors import ConfigError
from ..utils.log import get_logger
from ..eval.evaluate import evaluate
from ..eval.loading import EvalTask, split_values
from ..eval.runner import RunSettings

logger = get_logger(__name__)


def eval_settings(cfg: Any) -> types.SimpleNamespace:
    """sft's config seen as `swiftall eval` reads it (its seed is the training seed)."""
    values = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(vars(cfg))
    return types.SimpleNamespace(**{**values, "eval_seed": int(getattr(cfg, "seed", 42) or 42),
                                    "eval_dataset": split_values(getattr(cfg, "eval_dataset", None))})


def load_training_tasks(cfg: Any) -> Optional[tuple[list[EvalTask], types.SimpleNamespace]]:
    """The tasks to score during training, loaded (and checked) before the model loads; None without
    --eval_dataset."""
    view = eval_settings(cfg)
    if not view.eval_dataset:
        if getattr(cfg, "eval_use_evalscope", False):
            raise ConfigError("--eval_use_evalscope true: give --eval_dataset too (benchmarks from 'swiftall eval "
                              "--list' or eval files, e.g. --eval_dataset gsm8k#50); the validation loss comes "
                              "from --val_dataset")
        return None
    from .eval import load_tasks

    return load_tasks(view), view


class TrainingEval(TrainerCallback):
    """Scores the trainer's model on the tasks every `every` steps, logs the scores through `trainer.log`."""

    def __init__(self, trainer: Any, tasks: list[EvalTask], view: Any, template: Any, output_dir: Path):
        from .eval import generation_config

        self.trainer, self.tasks, self.view, self.template = trainer, tasks, view, template
        self.folder = Path(output_dir) / "eval"
        self.every = int(view.eval_steps or view.save_steps)
        self.generation, self.max_given = generation_config(view)
        self.settings = RunSettings(self.generation, int(view.eval_num_fewshot or 0), view.eval_seed,
                                    keep_think=bool(view.eval_keep_think), concurrency=64, system=view.system,
                                    progress=False)
        self.scored: set[int] = set()
        self.history: list[dict[str, Any]] = []

    def on_train_begin(self, args, state, control, **kwargs):
        if self.view.eval_dataset_on_start and state.global_step == 0:
            self.score(state)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every == 0 or state.global_step >= state.max_steps > 0:
            self.score(state)

    def score(self, state: Any) -> Optional[dict[str, Any]]:
        """Every process enters (as transformers' own evaluate): rank 0 generates and writes the report while the
        others wait for its scores, then all log them. The log must not end the step's own loss log: transformers
        clears `should_log` in every log, and a rank that skipped the step's loss gather while the others entered
        it was the gloo collective mismatch after the first scoring under several processes."""
        if state.global_step in self.scored:
            return None
        self.scored.add(state.global_step)
        started = time.perf_counter()
        with whole_weights(self.trainer):
            report, failure = self._evaluate_on_rank_zero(state)
            shared = from_rank_zero({"logs": scores_to_log(report) if report else {}, "failure": failure})
        if shared["failure"]:  # every process stops with rank 0's error, rather than wait for its next collective
            raise RuntimeError(f"scoring --eval_dataset at step {state.global_step} failed on rank 0: "
                               f"{shared['failure']}")
        logs = shared["logs"]
        control = self.trainer.control
        should_log = control.should_log
        self.trainer.log(dict(logs))
        control.should_log = should_log
        seconds = time.perf_counter() - started
        if getattr(self.trainer, "_window_start", None):  # the tokens/s of the next log leave the scoring time out
            self.trainer._window_start += seconds
        if report is None:
            return None
        self.history.append({"step": state.global_step, "run_dir": report["run_dir"], **logs})
        logger.info(f"step {state.global_step}: {summary_line(report)} ({seconds:.1f} s; report in "
                    f"{report['run_dir']})")
        return report

    def _evaluate_on_rank_zero(self, state: Any) -> tuple[Optional[dict[str, Any]], Optional[str]]:
        """(report, None) on rank 0, (None, None) on the others; (None, the error) when rank 0's scoring failed."""
        if not state.is_world_process_zero:
            return None, None
        try:
            return self._evaluate(self.folder / f"step-{state.global_step}", state.global_step), None
        except Exception as exc:  # noqa: BLE001 - shared with the other processes, then raised on every one
            logger.exception(f"scoring --eval_dataset at step {state.global_step} failed")
            return None, f"{type(exc).__name__}: {exc}"

    def _evaluate(self, folder: Path, step: int) -> dict[str, Any]:
        from ..infer.pt import PtEngine

        model = self.trainer.model
        was_training = model.training
        restore = _standard_attention(model)
        tokenizer = getattr(self.template, "tokenizer", None) or self.trainer.processing_class
        engine = PtEngine(model, tokenizer, self.template, max_batch_size=16)  # sets eval mode
        try:
            config = {"model": self.view.model, "step": step, "eval_dataset": self.view.eval_dataset,
                      "generation": {k: v for k, v in vars(self.generation).items() if v not in (None, [], 0)}}
            with engine:
                return evaluate(engine, self.tasks, self.settings, folder, config, False, self.view.eval_mcq_mode,
                                self.max_given, print_table=False)
        finally:
            restore()
            model.train(was_training)


@contextlib.contextmanager
def whole_weights(trainer: Any) -> Any:
    """Under ZeRO-3 every process gathers the whole weights and ZeRO's per-layer gathering hooks come off while rank 0
    generates alone (TRL's unwrap_model_for_generation, as its GRPO/PPO rollouts do); otherwise nothing to do."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    if not is_deepspeed_zero3_enabled():
        yield
        return
    from trl.models.utils import unwrap_model_for_generation

    with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator), \
            _without_step_hook(trainer.model_wrapped):
        yield


@contextlib.contextmanager
def _without_step_hook(engine: Any) -> Any:
    """ZeRO-3's hook at the start of each forward (which TRL leaves on) checks, until its trace of the layers is
    complete (the first steps, and again after each generation), that every process recorded the same layers: a
    collective, that rank 0 generating alone would enter by itself. Off while rank 0 generates, back first after."""
    offload = getattr(engine.optimizer, "parameter_offload", engine.optimizer)
    handle = getattr(offload, "fwd_pre_hook", None)
    hooks = offload.module._forward_pre_hooks
    hook = hooks.pop(handle.id, None) if handle is not None else None
    try:
        yield
    finally:
        if hook is not None:
            hooks[handle.id] = hook
            hooks.move_to_end(handle.id, last=False)


def from_rank_zero(value: dict[str, Any]) -> dict[str, Any]:
    """Rank 0's `value` on every process (the others wait here while rank 0 generates); as is in one process."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    shared = [value]
    dist.broadcast_object_list(shared, src=0)
    return shared[0]


def _standard_attention(model: Any) -> Any:
    """Generation needs masked attention: a model switched to sdpa_varlen for padding-free training rows runs
    sdpa while it is scored; returns the function that switches it back."""
    from ..train.varlen import NAME

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(base.config, "_attn_implementation", None) != NAME:
        return lambda: None
    base.set_attn_implementation("sdpa")
    return lambda: base.set_attn_implementation(NAME)


def scores_to_log(report: dict[str, Any]) -> dict[str, float]:
    """{'eval_<dataset>/<metric>': value} for every metric of every dataset (primary first)."""
    logs = {}
    for name, result in report["datasets"].items():
        for metric, entry in result["metrics"].items():
            if entry.get("value") is not None:
                logs[f"eval_{name}/{metric}"] = float(entry["value"])
    return logs


def summary_line(report: dict[str, Any]) -> str:
    parts = []
    for name, result in report["datasets"].items():
        entry = result["metrics"][result["primary"]]
        low, high = entry["ci95"]
        parts.append(f"{name} {result['primary']} {entry['value']:.3f} [{low:.3f}, {high:.3f}] (n={entry['n']})")
    return "; ".join(parts)


def attach_training_eval(trainer: Any, loaded: Optional[tuple[list[EvalTask], Any]], template: Any,
                         output_dir: Path) -> Optional[TrainingEval]:
    """Adds the callback to the trainer when --eval_dataset was given (`loaded` from load_training_tasks)."""
    if loaded is None:
        return None
    callback = TrainingEval(trainer, loaded[0], loaded[1], template, output_dir)
    trainer.add_callback(callback)
    trainer.training_eval = callback
    return callback

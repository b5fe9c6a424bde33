"""One evaluation run over any Engine: every task's answers (resumed from its predictions file when asked),
scored, summarised with intervals, written as report.json / report.md, and printed as a table."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

from ..utils.log import get_logger
from .loading import EvalTask
from .loglik import supports_loglik
from .predictions import PredictionLog
from .report import format_table, package_versions, write_report
from .runner import DEFAULT_MAX_TOKENS, RunSettings, run_generation, run_loglik
from .scoring import add_corpus_item_scores, by_subset, macro_average, metric_names, summarize

logger = get_logger(__name__)


def mcq_mode(requested: str, engine: Any) -> str:
    if requested in ("generate", "loglik"):
        return requested
    return "loglik" if supports_loglik(engine) else "generate"


def _task_settings(task: EvalTask, base: RunSettings, engine: Any, requested_mode: str,
                   max_tokens_given: bool) -> RunSettings:
    mode = mcq_mode(task.options.get("mode", requested_mode), engine) if task.eval_type == "mcq" else "generate"
    generation = base.generation
    if not max_tokens_given:
        from dataclasses import replace

        generation = replace(generation, max_new_tokens=int(task.options.get(
            "max_new_tokens", DEFAULT_MAX_TOKENS.get(task.eval_type, 128))))
    names = metric_names(task.eval_type, task.benchmark, task.options, mode == "loglik")
    return RunSettings(generation, int(task.options.get("num_fewshot", base.num_fewshot)), base.seed, mode,
                       base.keep_think, base.concurrency, task.options.get("system", base.system), base.adapter,
                       names, base.progress)


def evaluate_task(engine: Any, task: EvalTask, settings: RunSettings, folder: Path, resume: bool
                  ) -> dict[str, Any]:
    log = PredictionLog(folder / "predictions" / f"{task.name}.jsonl")
    wanted = {item.id for item in task.items}
    done = {k: v for k, v in log.done().items() if k in wanted} if resume else {}
    if not resume and log.path.exists():
        log.path.unlink()
    todo = [item for item in task.items if item.id not in done]
    if done:
        logger.info(f"{task.name}: {len(done)} answers kept from {log.path}, {len(todo)} to go")
    started = time.perf_counter()
    if todo:
        runner = run_loglik if settings.mcq_mode == "loglik" else run_generation
        runner(engine, task, todo, log, settings, len(done))
    seconds = time.perf_counter() - started
    by_id = log.done()
    records = [by_id[item.id] for item in task.items if item.id in by_id]
    add_corpus_item_scores(settings.metric_names, records)
    log.rewrite(records)
    return summary(task, settings, records, seconds, len(todo))


def summary(task: EvalTask, settings: RunSettings, records: list[dict[str, Any]], seconds: float,
            answered: int) -> dict[str, Any]:
    names = settings.metric_names
    subsets = by_subset(names, records, settings.seed)
    primary = names[0]
    warnings = []
    empty = sum(1 for r in records if not str(r.get("raw", "")).strip())
    errors = sum(1 for r in records if r.get("error"))
    if records and empty == len(records):
        warnings.append(f"the model answered nothing on all {len(records)} items (empty answers); check the chat "
                        "template, --system and the generation config (max_tokens, stop)")
    if errors:
        warnings.append(f"{errors} items failed in the engine (see 'error' in predictions/{task.name}.jsonl); "
                        "they score 0")
    for warning in warnings:
        logger.warning(f"{task.name}: {warning}")
    gen = settings.generation
    return {"eval_type": task.eval_type, "mode": settings.mcq_mode if task.eval_type == "mcq" else "generate",
            "chat_template": settings.mcq_mode != "loglik" or task.eval_type != "mcq",
            "primary": primary, "metrics": summarize(names, records, settings.seed), "subsets": subsets,
            "macro_average": macro_average(subsets, primary) if subsets else None, "n": len(records),
            "source": task.source, "data_hash": task.data_hash, "num_fewshot": settings.num_fewshot,
            "max_new_tokens": gen.max_new_tokens, "empty_answers": empty, "errors": errors, "warnings": warnings,
            "seconds": round(seconds, 3), "items_per_s": round(answered / seconds, 3) if seconds and answered else None}


def evaluate(engine: Any, tasks: list[EvalTask], settings: RunSettings, folder: Path, config: dict[str, Any],
             resume: bool = False, requested_mode: str = "auto", max_tokens_given: bool = False,
             print_table: bool = True) -> dict[str, Any]:
    started = time.perf_counter()
    results = {}
    for task in tasks:
        task_settings = _task_settings(task, settings, engine, requested_mode, max_tokens_given)
        results[task.name] = evaluate_task(engine, task, task_settings, folder, resume)
    report = {"run_dir": str(folder), "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "config": config,
              "packages": package_versions(), "datasets": results,
              "wall_time_s": round(time.perf_counter() - started, 3)}
    write_report(folder, report)
    if print_table:
        print(format_table(report))
        print(f"report: {folder / 'report.json'}")
    return report


def load_report(run: str | Path) -> dict[str, Any]:
    import json

    from ..utils.errors import ConfigError

    path = Path(run)
    path = path / "report.json" if path.is_dir() else path
    if not path.is_file():
        raise ConfigError(f"{run}: no report.json there; give the folder of a 'swiftall eval' run "
                          "(eval_output/<timestamp>)")
    return json.loads(path.read_text())


def run_folder(run: str | Path) -> Path:
    path = Path(run)
    return path.parent if path.is_file() else path



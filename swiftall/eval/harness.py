"""The lm-evaluation-harness and EvalScope backends. lm_eval runs through its Python API on our model (its HF
model class, adapters through its peft argument) or against --eval_url (its chat-completions model); local files
become lm_eval task configs (multiple choice by log-likelihood with the same 'Question: ...\\nAnswer:' prompt as
the native backend; generation with the chat template and exact match). Results land in the same report."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from ..utils.errors import ConfigError, DataError
from ..utils.optional import require
from .loading import EvalTask
from .stats import score_entry


def local_task_config(task: EvalTask, folder: Path, max_new_tokens: int) -> dict[str, Any]:
    """An lm_eval task (a dict config) over this task's items, written as JSONL in `folder`."""
    path = folder / f"{task.name}.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for item in task.items:
            row = {"id": item.id, "question": item.question, "references": item.references}
            if item.choices:
                row.update(choices=item.choices, answer=item.answer_index)
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    base = {"task": f"swiftall_{task.name}", "dataset_path": "json", "dataset_kwargs": {"data_files":
                                                                                        {"test": str(path)}},
            "test_split": "test"}
    if task.eval_type == "mcq":
        return {**base, "output_type": "multiple_choice", "doc_to_text": "Question: {{question}}\nAnswer:",
                "doc_to_choice": "{{choices}}", "doc_to_target": "{{answer}}",
                "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                                {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}]}
    if task.eval_type not in ("qa", "math"):
        raise ConfigError(f"--eval_backend lm_eval: local {task.eval_type} data is scored by the native backend "
                          "only (lm_eval takes multiple-choice and question-answer files)")
    return {**base, "output_type": "generate_until", "doc_to_text": "{{question}}",
            "doc_to_target": "{{references[0]}}",
            "generation_kwargs": {"until": ["<|im_end|>"], "max_gen_toks": max_new_tokens, "do_sample": False},
            "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True,
                             "ignore_case": True, "ignore_punctuation": True}],
            "filter_list": [{"name": "strip", "filter": [{"function": "remove_whitespace"},
                                                          {"function": "take_first"}]}]}


def lm_eval_model(cfg: Any, generative: bool) -> Any:
    require("lm_eval", "lm_eval", "--eval_backend lm_eval")
    if cfg.eval_url:
        from lm_eval.models.openai_completions import LocalChatCompletion

        if not generative:
            raise ConfigError("--eval_backend lm_eval with --eval_url scores generation only (a chat server gives "
                              "no log-likelihoods); use --eval_mcq_mode generate with the native backend")
        return LocalChatCompletion(base_url=cfg.eval_url.rstrip("/") + "/chat/completions",
                                   model=cfg.eval_model or "default", num_concurrent=int(cfg.eval_concurrency),
                                   tokenized_requests=False)
    from lm_eval.models.huggingface import HFLM

    from ..models import resolve_model

    info = resolve_model(cfg.model, cfg.model_type, hub=cfg.hub, revision=cfg.revision)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    return HFLM(pretrained=str(info.path), peft=cfg.adapters[0] if cfg.adapters else None, device=device,
                dtype="float32" if device == "cpu" else "auto", batch_size=int(cfg.max_batch_size),
                trust_remote_code=bool(cfg.trust_remote_code))


def run_lm_eval_task(task: EvalTask, cfg: Any, lm: Any, max_new_tokens: int, folder: Path) -> dict[str, Any]:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory(prefix="swiftall-lm-eval-") as tmp:
        local = task.benchmark is None or task.source.get("kind") == "local copy"
        spec: Any = local_task_config(task, Path(tmp), max_new_tokens) if local else task.benchmark.lm_eval_task
        if spec is None:
            raise ConfigError(f"--eval_backend lm_eval: {task.name} has no lm-evaluation-harness task; use the "
                              "native backend")
        generative = task.eval_type != "mcq"
        started = time.perf_counter()
        try:
            out = simple_evaluate(model=lm, tasks=[spec], num_fewshot=int(cfg.eval_num_fewshot or 0) or None,
                                  limit=None if local else (int(cfg.eval_limit) if cfg.eval_limit else None),
                                  apply_chat_template=generative, log_samples=True, task_manager=TaskManager(),
                                  random_seed=int(cfg.eval_seed), bootstrap_iters=0)
        except (ConnectionError, OSError) as exc:
            raise DataError(f"--eval_backend lm_eval: {task.name}: lm-evaluation-harness could not load its data "
                            f"({type(exc).__name__}: {str(exc)[:200]}); offline, give a local file") from None
    seconds = time.perf_counter() - started
    name = spec["task"] if isinstance(spec, dict) else spec
    results, samples = out["results"][name], out["samples"][name]
    names = [k.partition(",")[0] for k, v in results.items() if isinstance(v, (int, float)) and
             not k.partition(",")[0].endswith("_stderr") and k.partition(",")[0] != "sample_len"]
    metrics = {}
    for metric in names:   # intervals from the per-sample scores, the same way as the native backend
        values = [float(s[metric]) for s in samples if isinstance(s.get(metric), (int, float, bool))]
        metrics[metric] = {**score_entry(values, float(results[f"{metric},none"]) if f"{metric},none" in results
                                         else None, seed=int(cfg.eval_seed)), "higher_is_better": True}
    _write_samples(task, samples, folder / "predictions" / f"{task.name}.jsonl", list(metrics))
    return {"eval_type": task.eval_type, "mode": "loglik" if not generative else "generate",
            "chat_template": generative, "primary": next(iter(metrics)), "metrics": metrics, "subsets": {},
            "macro_average": None, "n": len(samples), "source": task.source, "data_hash": task.data_hash,
            "num_fewshot": int(cfg.eval_num_fewshot or 0), "backend": "lm_eval", "warnings": [],
            "seconds": round(seconds, 3), "items_per_s": round(len(samples) / seconds, 3) if seconds else None}


def _write_samples(task: EvalTask, samples: list[dict], path: Path, metrics: list[str]) -> None:
    ids = [item.id for item in task.items]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for sample in samples:
            doc_id = sample.get("doc_id", 0)
            filtered = sample.get("filtered_resps")
            record = {"id": ids[doc_id] if doc_id < len(ids) else str(doc_id),
                      "prompt": (sample.get("arguments") or [[None]])[0][0] if sample.get("arguments") else None,
                      "raw": json.dumps(filtered, default=str), "extracted": json.dumps(filtered, default=str),
                      "references": [str(sample.get("target"))],
                      "score": {m: float(sample[m]) for m in metrics if isinstance(sample.get(m), (int, float))}}
            f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")


def run_external(cfg: Any, tasks: list[EvalTask], generation: Any, config: dict[str, Any]) -> dict[str, Any]:
    from .report import format_table, new_run_dir, package_versions, write_report

    if cfg.eval_backend == "evalscope":
        return run_evalscope(cfg, tasks)
    folder = new_run_dir(cfg.eval_output_dir)
    results = {}
    for task in tasks:
        lm = lm_eval_model(cfg, task.eval_type != "mcq")
        results[task.name] = run_lm_eval_task(task, cfg, lm, generation.max_new_tokens or 128, folder)
    report = {"run_dir": str(folder), "config": config, "packages": package_versions(), "datasets": results}
    write_report(folder, report)
    print(format_table(report))
    return report


def run_evalscope(cfg: Any, tasks: list[EvalTask]) -> dict[str, Any]:
    """EvalScope on registered benchmarks, against --eval_url or the model folder; its own report is returned."""
    require("evalscope", "evalscope", "--eval_backend evalscope")
    from evalscope import TaskConfig, run_task

    names = []
    for task in tasks:
        if task.benchmark is None or not task.benchmark.evalscope_name:
            raise ConfigError(f"--eval_backend evalscope: {task.name} is not an EvalScope dataset; use the native "
                              "backend for local files")
        names.append(task.benchmark.evalscope_name)
    kwargs: dict[str, Any] = {"datasets": names, "limit": cfg.eval_limit, "work_dir": cfg.eval_output_dir}
    if cfg.eval_url:
        kwargs.update(model=cfg.eval_model or "default", api_url=cfg.eval_url, eval_type="openai_api")
    else:
        kwargs.update(model=cfg.model)
    return run_task(task_cfg=TaskConfig(**kwargs))

"""Running one task through an Engine: requests go to the engine all at once (up to `concurrency` in flight,
so the PyTorch engine's continuous batching keeps its batch full and a server gets concurrent requests), each
answer is scored and appended to the predictions file as it arrives, and a progress bar shows the ETA.
Multiple choice by log-likelihood runs batched forwards through the local model instead."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Optional

from ..infer.engine import InferRequest, InferResponse, RequestConfig
from ..utils.errors import SwiftallError
from .items import EvalItem
from .loading import EvalTask
from .loglik import loglikelihoods
from .predictions import PredictionLog
from .prompts import (fewshot_examples, generation_messages, loglik_context, loglik_continuations)
from .scoring import extract, item_scores, rouge_for

DEFAULT_MAX_TOKENS = {"mcq": 32, "yesno": 16, "vqa": 32, "qa": 128, "caption": 64, "asr": 128, "math": 512,
                      "code": 512, "ifeval": 1024}


@dataclass
class RunSettings:
    generation: RequestConfig
    num_fewshot: int = 0
    seed: int = 42
    mcq_mode: str = "generate"           # generate | loglik
    keep_think: bool = False
    concurrency: int = 64
    system: Optional[str] = None
    adapter: Optional[str] = None
    metric_names: list[str] = field(default_factory=list)
    progress: bool = True


def _bar(total: int, done: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc=desc, unit="item", disable=not enabled, dynamic_ncols=True)


def generation_record(task: EvalTask, item: EvalItem, messages: list[dict], response: Optional[InferResponse],
                      error: Optional[str], settings: RunSettings, rouge: Any) -> dict[str, Any]:
    raw = response.text if response is not None else ""
    extracted = extract(task.eval_type, item, raw, settings.keep_think)
    record = {"id": item.id, "subset": item.subset, "prompt": messages, "raw": raw, "extracted": extracted,
              "references": item.references,
              **({"choices": item.choices, "answer": item.answer_index} if item.choices else {}),
              "finish_reason": response.finish_reason if response is not None else "error",
              "completion_tokens": response.completion_tokens if response is not None else 0}
    if error:
        record["error"] = error
    record["score"] = item_scores(task.eval_type, item, extracted, raw, settings.metric_names, rouge)
    return record


def run_generation(engine: Any, task: EvalTask, todo: list[EvalItem], log: PredictionLog, settings: RunSettings,
                   done: int) -> None:
    rouge = rouge_for(settings.metric_names)
    suffix = task.benchmark.prompt_suffix if task.benchmark else ""
    work = []
    for item in todo:
        shots = fewshot_examples(item, task.fewshot_pool, settings.num_fewshot, settings.seed)
        messages = generation_messages(item, task.eval_type, shots, suffix, settings.system)
        work.append((item, messages, InferRequest(messages=messages, adapter=settings.adapter, **item.media)))
    bar = _bar(done + len(todo), done, task.name, settings.progress)

    async def one(semaphore: asyncio.Semaphore, item: EvalItem, messages: list[dict], request: InferRequest) -> None:
        async with semaphore:
            try:
                response, error = await engine.infer_async(request, settings.generation), None
            except SwiftallError as exc:
                if type(exc).__name__ == "HttpEngineError" and "HTTP 4" not in str(exc):
                    raise
                response, error = None, str(exc)
        log.append(generation_record(task, item, messages, response, error, settings, rouge))
        bar.update(1)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=in_flight(engine, settings.concurrency)))
        semaphore = asyncio.Semaphore(in_flight(engine, settings.concurrency))
        await asyncio.gather(*(one(semaphore, *w) for w in work))

    try:
        asyncio.run(main())
    finally:
        bar.close()
        log.close()


def in_flight(engine: Any, concurrency: int) -> int:
    """Requests in flight: --eval_concurrency, and for a local batching engine at least twice its batch (within its
    queue), so answers that finish are replaced from a backlog and its free rows refill in groups."""
    scheduler = getattr(engine, "scheduler", None)
    batch, queue = int(getattr(scheduler, "max_batch_size", 0) or 0), int(getattr(scheduler, "max_queue", 0) or 0)
    return max(1, concurrency, min(2 * batch, queue))


def run_loglik(engine: Any, task: EvalTask, todo: list[EvalItem], log: PredictionLog, settings: RunSettings,
               done: int, batch_size: int = 16) -> None:
    """Each option's summed log-probability; acc picks the largest, acc_norm the largest per character."""
    style = task.benchmark.mc_style if task.benchmark else "question"
    bar = _bar(done + len(todo), done, f"{task.name} (log-likelihood)", settings.progress)
    chunk = max(1, batch_size // 2)
    try:
        for start in range(0, len(todo), chunk):
            items = todo[start:start + chunk]
            contexts = [loglik_context(it, style, fewshot_examples(it, task.fewshot_pool, settings.num_fewshot,
                                                                   settings.seed)) for it in items]
            pairs = [(ctx, cont) for it, ctx in zip(items, contexts) for cont in loglik_continuations(it)]
            scores = loglikelihoods(engine, pairs, settings.adapter, batch_size)
            offset = 0
            for item, ctx in zip(items, contexts):
                n = len(item.choices or [])
                log.append(loglik_record(item, ctx, scores[offset:offset + n]))
                offset += n
                bar.update(1)
    finally:
        bar.close()
        log.close()


def loglik_record(item: EvalItem, context: str, scores: list[float]) -> dict[str, Any]:
    from .extract import LETTERS

    choices = item.choices or []
    best = max(range(len(scores)), key=lambda j: scores[j])
    norm = max(range(len(scores)), key=lambda j: scores[j] / max(1, len(choices[j])))
    right = item.answer_index
    return {"id": item.id, "subset": item.subset, "prompt": context, "continuations": [f" {c}" for c in choices],
            "loglikelihoods": [round(s, 6) for s in scores], "raw": choices[best], "extracted": LETTERS[best],
            "references": item.references, "choices": choices, "answer": right,
            "score": {"acc": float(best == right), "acc_norm": float(norm == right)}}

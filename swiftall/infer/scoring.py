"""Log-probabilities of prompts' own tokens (`/v1/completions` with `echo` and `logprobs`, as lm-evaluation-harness
asks for log-likelihood scoring): item i of a prompt is the log-probability of its token i given tokens 0..i-1, with
the `top` most likely alternatives; the first token has none (None), as in OpenAI's answers.

An engine that offers `prompt_logprobs(ids, adapter, top)` answers itself; otherwise the PyTorch engine's model
scores all the prompts of a request in one padded forward here, on the scheduler's thread when the scheduler takes
jobs (`scheduler.run`), so it never runs beside a batch step.
"""
from __future__ import annotations

from typing import Any, Optional

from .engine import BASE_MODEL, TokenLogprob

MAX_LOGIT_ELEMENTS = 64 * 1024 * 1024   # rows x positions x vocabulary per forward (256 MiB of float32 logits)


def prompt_logprobs(engine: Any, rows: list[list[int]], adapter: Optional[str], top: int
                    ) -> list[list[Optional[TokenLogprob]]]:
    own = getattr(engine, "prompt_logprobs", None)
    if callable(own):
        return [own(ids, adapter, top) for ids in rows]
    model, tokenizer = getattr(engine, "model", None), getattr(engine, "tokenizer", None)
    if model is None or tokenizer is None:
        raise NotImplementedError(f"{type(engine).__name__} cannot score prompt tokens (echo with logprobs)")
    scheduler = getattr(engine, "scheduler", None)
    name = None
    if getattr(engine, "adapters", None):
        name = (engine._adapter(adapter) if hasattr(engine, "_adapter") else adapter) or BASE_MODEL
        if not getattr(scheduler, "use_adapter_names", True):  # a tuner without per-row selection: the one active
            name = None
    run = getattr(scheduler, "run", None)

    def job() -> list[list[Optional[TokenLogprob]]]:
        return [scored for group in _groups(rows, model) for scored in forward_logprobs(model, tokenizer, group,
                                                                                        name, top)]

    return run(job) if callable(run) else job()


def _groups(rows: list[list[int]], model: Any) -> list[list[list[int]]]:
    """Consecutive rows in groups whose padded logits stay under MAX_LOGIT_ELEMENTS."""
    vocab = getattr(getattr(model, "config", None), "vocab_size", None) or 50000
    groups: list[list[list[int]]] = []
    for ids in rows:
        if groups and (len(groups[-1]) + 1) * max(len(ids), *map(len, groups[-1])) * vocab <= MAX_LOGIT_ELEMENTS:
            groups[-1].append(ids)
        else:
            groups.append([ids])
    return groups


def forward_logprobs(model: Any, tokenizer: Any, rows: list[list[int]], adapter: Optional[str], top: int
                     ) -> list[list[Optional[TokenLogprob]]]:
    """One right-padded forward over `rows`; `adapter` is passed as peft's `adapter_names` when given."""
    import torch

    device = next(model.parameters()).device
    width = max(len(ids) for ids in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)], mask[i, :len(row)] = torch.tensor(row), 1
    kwargs = {"adapter_names": [adapter] * len(rows)} if adapter else {}
    with torch.inference_mode():
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs).logits[:, :-1]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        chosen = logprobs.gather(2, ids[:, 1:, None].to(logprobs.device))[..., 0].tolist()
        best = torch.topk(logprobs, k=max(1, top), dim=-1) if top else None
    return [_row(tokenizer, row, chosen[i], best, i) for i, row in enumerate(rows)]


def _row(tokenizer: Any, row: list[int], chosen: list[float], best: Any, i: int) -> list[Optional[TokenLogprob]]:
    out: list[Optional[TokenLogprob]] = [None]
    for k in range(len(row) - 1):
        alternatives = []
        if best is not None:
            alternatives = [(tokenizer.decode([t]), float(v)) for t, v in zip(best.indices[i, k].tolist(),
                                                                              best.values[i, k].tolist())]
        out.append(TokenLogprob(tokenizer.decode([row[k + 1]]), float(chosen[k]), alternatives))
    return out

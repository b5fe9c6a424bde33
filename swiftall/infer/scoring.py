"""Log-probabilities of a prompt's own tokens (`/v1/completions` with `echo` and `logprobs`, as lm-evaluation-harness
asks for log-likelihood scoring): item i is the log-probability of token i given tokens 0..i-1, with the `top`
most likely alternatives; the first token has none (None), as in OpenAI's answers.

An engine that offers `prompt_logprobs(ids, adapter, top)` answers itself; otherwise the PyTorch engine's model
runs one forward here, on the scheduler's thread when the scheduler takes jobs (`scheduler.run`), so it never
runs beside a batch step.
"""
from __future__ import annotations

from typing import Any, Optional

from .engine import BASE_MODEL, TokenLogprob


def prompt_logprobs(engine: Any, ids: list[int], adapter: Optional[str], top: int) -> list[Optional[TokenLogprob]]:
    own = getattr(engine, "prompt_logprobs", None)
    if callable(own):
        return own(ids, adapter, top)
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
    job = lambda: forward_logprobs(model, tokenizer, ids, name, top)  # noqa: E731
    return run(job) if callable(run) else job()


def forward_logprobs(model: Any, tokenizer: Any, ids: list[int], adapter: Optional[str], top: int
                     ) -> list[Optional[TokenLogprob]]:
    """One forward over `ids`; `adapter` is passed as peft's `adapter_names` when given."""
    import torch

    device = next(model.parameters()).device
    kwargs = {"adapter_names": [adapter]} if adapter else {}
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids], device=device), **kwargs).logits[0, :-1]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        targets = torch.tensor(ids[1:], device=logprobs.device)
        chosen = logprobs.gather(1, targets[:, None])[:, 0].tolist()
        best = torch.topk(logprobs, k=max(1, top), dim=-1) if top else None
    out: list[Optional[TokenLogprob]] = [None]
    for i, value in enumerate(chosen):
        alternatives = []
        if best is not None:
            alternatives = [(tokenizer.decode([t]), float(v)) for t, v in zip(best.indices[i].tolist(),
                                                                              best.values[i].tolist())]
        out.append(TokenLogprob(tokenizer.decode([ids[i + 1]]), float(value), alternatives))
    return out

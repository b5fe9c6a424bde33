"""Multiple choice by log-likelihood through the PyTorch engine's model: the summed log-probability of each
option's tokens after the context, tokenized as lm-evaluation-harness does (context and option encoded
together, the option's tokens being what follows the context's own encoding; no special tokens)."""
from __future__ import annotations

from typing import Any, Callable, Optional

from ..infer.engine import BASE_MODEL
from ..utils.errors import ConfigError


def supports_loglik(engine: Any) -> bool:
    return hasattr(engine, "model") and hasattr(engine, "tokenizer") and hasattr(engine, "scheduler")


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
    if not ctx:
        eos = tokenizer.eos_token_id
        return [eos], whole
    return ctx, whole[len(ctx):]


def loglikelihoods(engine: Any, pairs: list[tuple[str, str]], adapter: Optional[str] = None, batch_size: int = 16,
                   on_batch: Optional[Callable[[int], None]] = None) -> list[float]:
    """Summed log-probability of each continuation given its context, in the order given."""
    import torch

    if not supports_loglik(engine):
        raise ConfigError("log-likelihood scoring needs the local PyTorch engine (--infer_backend pt, no "
                          "--eval_url); use --eval_mcq_mode generate")
    tokenizer, model = engine.tokenizer, engine.model
    limit = engine.max_model_len or 2048
    encoded = [encode_pair(tokenizer, c, x) for c, x in pairs]
    rows = [((ctx + cont)[-(limit + 1):][:-1], len(cont)) for ctx, cont in encoded]
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
    results: list[float] = [0.0] * len(rows)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    name = engine._adapter(adapter) if hasattr(engine, "_adapter") else None
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        width = max(len(rows[i][0]) for i in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for j, i in enumerate(batch):
            ids[j, :len(rows[i][0])] = torch.tensor(rows[i][0])
            mask[j, :len(rows[i][0])] = 1
        kwargs = {"adapter_names": [name or BASE_MODEL] * len(batch)} if getattr(engine, "adapters", None) else {}
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        for j, i in enumerate(batch):
            length, n_cont = len(rows[i][0]), rows[i][1]
            targets = encoded[i][1][-n_cont:]
            positions = torch.arange(length - n_cont, length, device=logprobs.device)
            picked = logprobs[j, positions, torch.tensor(targets, device=logprobs.device)]
            results[i] = float(picked.sum())
        if on_batch is not None:
            on_batch(len(batch))
    return results

"""Per-row token choice for a batch whose rows each carry their own sampling settings.

transformers' logits processors apply one setting to a whole batch; a serving batch mixes greedy and sampled
requests, different temperatures, seeds and log-probability requests, so each row is processed on its own
(a few vector operations per row per step, small next to the forward pass).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class SamplingParams:
    """Concrete settings of one sequence (the request's settings resolved against the model's defaults)."""

    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    logprobs: bool = False
    top_logprobs: int = 0
    seed: Optional[int] = None        # a sampled request's seed: its generator is made on the logits' device
    generator: Any = None             # that torch.Generator, made at the first sampled token
    history: list[int] = field(default_factory=list)  # prompt + generated ids (repetition penalty)


def resolve_params(config: Any, defaults: Any, seed: Optional[int] = None) -> SamplingParams:
    """RequestConfig + the model's GenerationConfig -> SamplingParams. temperature 0 is greedy."""
    do_sample = bool(getattr(defaults, "do_sample", False))
    temperature = getattr(defaults, "temperature", None) or 1.0
    if config.temperature is not None:
        do_sample = config.temperature > 0
        temperature = config.temperature if do_sample else 1.0
    top_p = config.top_p if config.top_p is not None else (getattr(defaults, "top_p", None) or 1.0)
    top_k = config.top_k if config.top_k is not None else (getattr(defaults, "top_k", None) or 0)
    penalty = config.repetition_penalty or getattr(defaults, "repetition_penalty", None) or 1.0
    return SamplingParams(do_sample, float(temperature), float(top_p), int(top_k), float(penalty),
                          bool(config.logprobs or config.top_logprobs), int(config.top_logprobs or 0),
                          int(seed) if do_sample and seed is not None else None)


def choose_tokens(logits: Any, params: list[SamplingParams]) -> list[tuple[int, Optional[float], list]]:
    """logits [rows, vocab] -> per row (token id, its log-probability or None, [(id, logprob)] top alternatives).

    Log-probabilities are those of the model's own distribution (before temperature and truncation), as vLLM
    and OpenAI report them."""
    import torch

    logits = logits.float()
    want_logprobs = any(p.logprobs for p in params)
    logp = torch.log_softmax(logits, dim=-1) if want_logprobs else None
    greedy = logits.argmax(dim=-1).tolist()
    out = []
    for i, p in enumerate(params):
        row, penalized = logits[i], p.repetition_penalty != 1.0 and bool(p.history)
        if penalized:
            row = _penalize(row, p.history, p.repetition_penalty)
        token = _sample(row, p) if p.do_sample else (int(row.argmax()) if penalized else greedy[i])
        lp, top = None, []
        if p.logprobs and logp is not None:
            lp = float(logp[i, token])
            if p.top_logprobs:
                values, ids = logp[i].topk(p.top_logprobs)
                top = list(zip(ids.tolist(), values.tolist()))
        out.append((token, lp, top))
    return out


def _penalize(row: Any, history: list[int], penalty: float) -> Any:
    import torch

    ids = torch.tensor(sorted(set(history)), dtype=torch.long, device=row.device)
    row = row.clone()
    scores = row[ids]
    row[ids] = torch.where(scores > 0, scores / penalty, scores * penalty)
    return row


def _sample(row: Any, p: SamplingParams) -> int:
    import torch

    row = row / max(p.temperature, 1e-5)
    if p.top_k and p.top_k < row.numel():
        kth = row.topk(p.top_k).values[-1]
        row = row.masked_fill(row < kth, float("-inf"))
    if p.top_p < 1.0:
        sorted_logits, order = row.sort(descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop = cumulative - sorted_logits.softmax(-1) >= p.top_p  # keep the smallest set reaching top_p
        row = row.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    probs = row.softmax(-1)
    return int(torch.multinomial(probs, 1, generator=generator_for(p, probs.device)))


def generator_for(p: SamplingParams, device: Any) -> Any:
    """The request's seeded generator on `device` (where the probabilities are: `multinomial` refuses a generator on
    another device), made once and reused, so the draws of one seed are the same sequence on every run. None
    without a seed (torch's global generator)."""
    import torch

    if p.seed is None:
        return None
    if p.generator is None or p.generator.device != torch.device(device):
        p.generator = torch.Generator(device=device).manual_seed(p.seed)
    return p.generator

"""The PPO math (Schulman et al. 2017; RLHF as in Ziegler et al. 2019 / Ouyang et al. 2022), on [batch, tokens]
tensors of response positions with a 0/1 mask: per-token rewards with a KL penalty to the reference, GAE,
the clipped policy objective and the clipped value loss.

The losses divide by `num_tokens` when given (the response tokens of the whole rollout batch rather than of the
micro-batch): the micro-batches of one gradient-accumulation step then add up to the loss, gradient and diagnostics
of the whole batch taken at once."""
from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F


def masked_mean(x: torch.Tensor, mask: torch.Tensor, num_tokens: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean over the masked positions, or their sum over `num_tokens` (a micro-batch's share of a larger mean)."""
    return (x * mask).sum() / (mask.sum().clamp(min=1) if num_tokens is None else num_tokens)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    return (out if shift_mean else out + mean) * mask


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log p(target) under the logits (same shapes up to the vocabulary axis)."""
    logp = F.log_softmax(logits.float() / temperature, dim=-1)
    return logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def token_rewards(scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor,
                  kl_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
    """r_t = -kl_coef * (log pi - log pi_ref) at every response token, plus the sequence's score at its last token."""
    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    last = (mask.sum(dim=1) - 1).clamp(min=0).long()
    rewards[torch.arange(len(scores)), last] += scores
    return rewards * mask, kl


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float,
        lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over right-padded sequences; returns (advantages, returns)."""
    values = values * mask
    steps = rewards.shape[1]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros(rewards.shape[0], dtype=rewards.dtype, device=rewards.device)
    for t in reversed(range(steps)):
        next_value = values[:, t + 1] if t + 1 < steps else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = (delta + gamma * lam * last) * mask[:, t]
        advantages[:, t] = last
    returns = advantages + values
    return advantages * mask, returns * mask


def ppo_losses(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, values: torch.Tensor,
               old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, cliprange: float,
               cliprange_value: float, num_tokens: Optional[torch.Tensor] = None
               ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Clipped surrogate policy loss and clipped value loss (both masked means), with diagnostics."""
    ratio = torch.exp(logprobs - old_logprobs)
    pg1 = -advantages * ratio
    pg2 = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    pg_loss = masked_mean(torch.maximum(pg1, pg2), mask, num_tokens)
    v_clipped = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    vf_loss = 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (v_clipped - returns) ** 2), mask, num_tokens)
    with torch.no_grad():
        stats = {"policy/clipfrac": masked_mean((pg2 > pg1).float(), mask, num_tokens).item(),
                 "policy/approxkl": 0.5 * masked_mean((logprobs - old_logprobs) ** 2, mask, num_tokens).item(),
                 "val/clipfrac": masked_mean(((values - returns) ** 2 < (v_clipped - returns) ** 2).float(), mask,
                                             num_tokens).item(),
                 "policy/ratio": masked_mean(ratio, mask, num_tokens).item()}
    return pg_loss, vf_loss, stats

"""Reward functions and the PPO math (no model)."""
from __future__ import annotations

import pytest
import torch

from swiftall.config import RlhfConfig
from swiftall.train.rlhf import ppo_core, rewards
from swiftall.utils.errors import ConfigError


def _c(text):
    return [{"role": "assistant", "content": text}]


def test_builtin_rewards():
    assert rewards.accuracy(None, [_c("It is 12."), _c("<answer>7</answer>"), _c("13")],
                            solution=["12", "7.0", "12"]) == [1.0, 1.0, 0.0]
    fmt = rewards.make_format(r"<answer>\d+</answer>")
    assert fmt(None, [_c("<answer>4</answer>"), _c("4")]) == [1.0, 0.0]
    length = rewards.make_length(8)
    assert length(None, [None] * 3, completion_ids=[[1] * 4, [1] * 7, [1] * 9]) == [0.0, -0.5, -1.0]
    rep = rewards.repetition(None, [_c("a b c d e"), _c("a b a b a b a b")])
    assert rep[0] == 0.0 and rep[1] < -0.5


def test_plugin_rewards_and_weights(tmp_path):
    plugin = tmp_path / "my_rewards.py"
    plugin.write_text("def shout(prompts, completions, **kw):\n"
                      "    return [1.0 if c[0]['content'].isupper() else 0.0 for c in completions]\n"
                      "reward_funcs = {'shout': shout}\n")
    cfg = RlhfConfig(model="m", dataset=["d"], rlhf_type="grpo", reward_funcs=["shout", "accuracy"],
                     plugin=[str(plugin)], reward_weights=[2.0, 1.0])
    funcs = rewards.resolve_rewards(cfg)
    total, means = rewards.combine(funcs, cfg.reward_weights, [None, None], [_c("YES 3"), _c("no 4")],
                                   {"solution": ["3", "3"]})
    assert total == [3.0, 0.0] and means == {"rewards/shout": 0.5, "rewards/accuracy": 0.5}
    bad = RlhfConfig(model="m", dataset=["d"], rlhf_type="grpo", reward_funcs=["nope"])
    with pytest.raises(ConfigError, match="--reward_funcs nope"):
        rewards.resolve_rewards(bad)


def test_gae_matches_the_recursion():
    rewards_t = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, 0.2, 0.1]])
    mask = torch.ones(1, 3)
    adv, ret = ppo_core.gae(rewards_t, values, mask, gamma=0.9, lam=0.8)
    d2 = 1.0 - 0.1
    d1 = 0.0 + 0.9 * 0.1 - 0.2
    d0 = 0.0 + 0.9 * 0.2 - 0.5
    a2, a1 = d2, d1 + 0.72 * d2
    a0 = d0 + 0.72 * a1
    assert torch.allclose(adv, torch.tensor([[a0, a1, a2]]))
    assert torch.allclose(ret, adv + values)


def test_kl_penalty_and_clipped_objective():
    scores = torch.tensor([2.0])
    logp, ref = torch.tensor([[-1.0, -2.0, 0.0]]), torch.tensor([[-1.5, -2.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])  # the third position is padding
    rew, kl = ppo_core.token_rewards(scores, logp, ref, mask, kl_coef=0.1)
    assert torch.allclose(rew, torch.tensor([[-0.05, 2.0, 0.0]]))
    assert torch.allclose(kl, torch.tensor([[0.5, 0.0, 0.0]]))
    old = torch.zeros(1, 2)
    new = torch.tensor([[0.5, -0.5]])  # ratios e^0.5 and e^-0.5, both outside [0.8, 1.2]
    adv = torch.tensor([[1.0, 1.0]])
    pg, vf, stats = ppo_core.ppo_losses(new, old, adv, torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2),
                                        torch.ones(1, 2), cliprange=0.2, cliprange_value=0.2)
    expected = -(1.2 + torch.exp(torch.tensor(-0.5))) / 2  # the gain of a positive advantage is capped at 1 + eps
    assert pg.item() == pytest.approx(expected.item(), rel=1e-5)
    assert stats["policy/clipfrac"] == 0.5 and vf.item() == 0.0

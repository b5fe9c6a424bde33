"""Completions from a policy while it trains (PPO's and GRPO's rollouts), through an Engine built over it.

The engine runs the policy's current weights (LoRA adapters active) in eval mode under inference mode, so
dropout is off and no graph is kept; the policy's train/eval mode is restored afterwards. The trainers (train
layer) never import this: the rlhf pipeline hands them `factory(policy, **sampling) -> PolicyRollout`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

from .engine import Engine, InferRequest, InferResponse, RequestConfig


class PolicyRollout:
    def __init__(self, engine: Engine, policy: Any, **sampling: Any):
        """`sampling`: RequestConfig fields (max_new_tokens, temperature, top_p, top_k, repetition_penalty)."""
        self.engine, self.policy = engine, policy
        self.config = RequestConfig(**sampling)
        self.requests = 0          # completions asked for so far (tests and logs read it)

    def _infer(self, requests: list[InferRequest], seed: Optional[int] = None) -> list[InferResponse]:
        was_training = self.policy.training
        self.policy.eval()
        try:
            out = self.engine.infer(requests, self.config) if seed is None else self._seeded(requests, seed)
        finally:
            self.policy.train(was_training)
        self.requests += len(requests)
        return out

    def _seeded(self, requests: list[InferRequest], seed: int) -> list[InferResponse]:
        """Request k samples with its own generator (seed + k): the same completions however the engine batches
        them (the shared random state is drawn from in whatever order its thread admits requests)."""
        from .pt import cancel_answers

        started = []
        try:
            for k, request in enumerate(requests):
                started.append(self.engine.start(request, dataclasses.replace(self.config, seed=seed + k)))
            for answers in started:
                answers[0].done.wait()
        except BaseException:
            cancel_answers([a for answers in started for a in answers])
            raise
        return [answers[0].response() for answers in started]

    def texts(self, rows: list[dict], seed: Optional[int] = None) -> list[str]:
        """One completion text per row (`prompt`: messages, optional `images`); reproducible with a `seed`."""
        reqs = [InferRequest(messages=r["prompt"], images=list(r.get("images") or [])) for r in rows]
        return [out.text for out in self._infer(reqs, seed)]

    def token_ids(self, prompt_ids: list[list[int]]) -> list[list[int]]:
        """One completion per already-encoded prompt, as token ids (a final eos included), at most
        `max_new_tokens` each."""
        outs = self._infer([InferRequest(messages=[], prompt_ids=list(ids)) for ids in prompt_ids])
        return [_ids(out) for out in outs]


def _ids(out: InferResponse) -> list[int]:
    if out.token_ids is None:
        raise RuntimeError("this engine does not report generated token ids; RL rollouts need the pt engine")
    return out.token_ids


def rollout_factory(tokenizer: Any, template: Any, max_batch_size: int) -> Any:
    """factory(policy, **sampling) -> a PolicyRollout over swiftall's pt Engine built on that policy."""
    from .pt import PtEngine

    def factory(policy: Any, **sampling: Optional[Any]) -> PolicyRollout:
        was_training = policy.training
        engine = PtEngine(policy, tokenizer, template, max_batch_size=max(1, max_batch_size))  # sets eval mode
        policy.train(was_training)
        return PolicyRollout(engine, policy, **sampling)

    return factory

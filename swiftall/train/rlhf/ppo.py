"""PPO for language models (TRL 1.x no longer ships one), on transformers' Trainer.

The Trainer optimises one module, the policy (LoRA through peft, or the full model) with a value head on its last
hidden state (ppo_model.py), so it brings what every other method has: --gradient_accumulation_steps, distributed
runs, checkpoint-N folders with trainer_state.json (written whole or not at all), --resume_from_checkpoint,
logging.jsonl/TensorBoard/plots and the throughput logger.

One rollout serves --num_ppo_epochs optimizer steps. At the first micro-step of a rollout the trainer samples
completions for its batch of prompt rows (--per_device_train_batch_size x --gradient_accumulation_steps of them on
each process) through swiftall's Engine (the pt engine over the policy being trained, wired by the pipeline), scores
them with reward models / reward functions, computes per-token rewards with a KL penalty to the reference (with LoRA:
the base with adapters disabled), values, GAE advantages whitened over the batch, and keeps them; every micro-step
then takes its slice of that rollout through the clipped policy objective plus the clipped value loss. The losses
are sums over each slice divided by the whole rollout's response tokens, so the micro-steps of one optimizer step
add up to the batch taken at once. --max_steps, --save_steps and --logging_steps count optimizer steps (as in GRPO),
and each logged step carries the statistics of the rollout it trained on (reward, kl, ...).

A run resumed from a checkpoint saved inside a rollout's --num_ppo_epochs steps rolls that batch out again with the
restored policy.
"""
from __future__ import annotations

import copy
import dataclasses
import os
from collections import defaultdict
from typing import Any, Optional

import torch
from transformers import Trainer

from ...tuners import apply_tuner
from ...utils.log import get_logger
from ..trainer import training_arguments
from .common import AlignSetup, callbacks, with_throughput
from .online import reward_functions
from .ppo_core import gae, masked_mean, masked_whiten, ppo_losses, token_rewards
from .ppo_data import RolloutSampler, encode_rollout, keep_rows, split_rollout
from .ppo_model import PolicyAndValue, disable_dropout, load_policy_and_value, response_logprobs, \
    save_policy_and_value
from .rewards import combine

logger = get_logger(__name__)


@dataclasses.dataclass
class PPOSettings:
    num_ppo_epochs: int = 2
    kl_coef: float = 0.05
    gamma: float = 1.0
    lam: float = 0.95
    cliprange: float = 0.2
    cliprange_value: float = 0.2
    vf_coef: float = 0.1
    temperature: float = 1.0

    @classmethod
    def from_config(cls, cfg: Any) -> "PPOSettings":
        return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)})


class PPOTrainer(Trainer):
    """Trainer over PolicyAndValue whose training_step rolls out at the start of each rollout and otherwise trains
    on the kept one. Built through `build_ppo` (with the throughput logger and atomic checkpoints mixed in)."""

    def __init__(self, model: PolicyAndValue, args: Any, train_rows: list[dict], tokenizer: Any, template: Any,
                 rollouts: Any, rewards: tuple[list, list[float]], settings: PPOSettings, ref_model: Any = None,
                 callbacks: Optional[list] = None):
        super().__init__(model=model, args=args, train_dataset=list(train_rows), data_collator=keep_rows,
                         processing_class=tokenizer, callbacks=callbacks)
        self.template, self.rollouts, self.ref_model, self.ppo = template, rollouts, ref_model, settings
        self.reward_funcs, self.reward_weights = rewards
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self._buffer: Optional[list[dict]] = None
        self._micro: Optional[int] = None
        self._rollout_stats: dict[str, float] = {}
        self._step_stats: dict[str, float] = {}

    def count_batch(self, inputs: Any) -> None:
        """Overridden by ThroughputMixin (build_ppo mixes it in before this class)."""

    # ---- data: one block of prompt rows per rollout, repeated for each of its micro-steps ------------------------
    def get_train_dataloader(self) -> Any:
        return self._get_dataloader(dataset=self.train_dataset, description="Training",
                                    batch_size=self._train_batch_size * self.args.gradient_accumulation_steps,
                                    sampler_fn=self._get_train_sampler, is_training=True)

    def _get_train_sampler(self, train_dataset: Any = None) -> RolloutSampler:
        accumulation = self.args.gradient_accumulation_steps
        block = self._train_batch_size * accumulation * max(1, self.args.world_size)
        return RolloutSampler(len(self.train_dataset), block, accumulation * self.ppo.num_ppo_epochs, self.args.seed)

    # ---- training ----------------------------------------------------------------------------------------------
    def train(self, resume_from_checkpoint: Optional[str] = None, *args: Any, **kwargs: Any) -> Any:
        self._buffer = self._micro = None  # a resumed run counts its micro-steps from the restored global step
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def training_step(self, model: Any, inputs: list[dict], num_items_in_batch: Any = None) -> torch.Tensor:
        model.train()
        accumulation = self.args.gradient_accumulation_steps
        if self._micro is None:
            self._micro = self.state.global_step * accumulation
        part = self._micro % accumulation
        if self._buffer is None or self._micro % (accumulation * self.ppo.num_ppo_epochs) == 0:
            self._buffer, self._rollout_stats = self.rollout(inputs)
        self._micro += 1
        batch = self._buffer[part]
        self.count_batch({"attention_mask": batch["attention_mask"], "completion_mask": batch["mask"]})
        with self.compute_loss_context_manager():
            logp, values = model(batch["input_ids"], batch["attention_mask"], batch["positions"])
            pg_loss, vf_loss, stats = ppo_losses(logp, batch["old_logp"], batch["advantages"], values,
                                                 batch["old_values"], batch["returns"], batch["mask"],
                                                 self.ppo.cliprange, self.ppo.cliprange_value, batch["num_tokens"])
            loss = pg_loss + self.ppo.vf_coef * vf_loss
        self.accelerator.backward(loss)
        self._record(part, {"loss/policy": pg_loss.item(), "loss/value": vf_loss.item(), **stats})
        return loss.detach()

    @torch.no_grad()
    def rollout(self, rows: list[dict]) -> tuple[list[dict], dict[str, float]]:
        """Completions, rewards, KL, values, GAE for a batch of prompt rows; returns its micro-batches and stats."""
        wrapper = self.accelerator.unwrap_model(self.model)
        seed = int(torch.randint(0, 2**31 - 1, (1,)))  # from the seeded, checkpointed random state: reproducible
        texts = self.rollouts.texts(rows, seed=seed)  # eval mode, no grad; the policy's mode is restored
        device = next(wrapper.policy.parameters()).device
        batch = encode_rollout(self.template, self.processing_class.pad_token_id, rows, texts, device)
        mask = batch["mask"]
        with self.compute_loss_context_manager():
            old_logp, old_values = wrapper(batch["input_ids"], batch["attention_mask"], batch["positions"])
            ref_logp = self._reference_logprobs(wrapper, batch)
        columns = {k: [r.get(k) for r in rows] for k in rows[0] if k not in ("prompt", "images")}
        scores, means = combine(self.reward_funcs, self.reward_weights, [r["prompt"] for r in rows],
                                [[{"role": "assistant", "content": t}] for t in texts], columns)
        scores_t = torch.tensor(scores, dtype=torch.float32, device=device)
        rewards, kl = token_rewards(scores_t, old_logp, ref_logp, mask, self.ppo.kl_coef)
        advantages, returns = gae(rewards, old_values, mask, self.ppo.gamma, self.ppo.lam)
        batch.update(old_logp=old_logp, old_values=old_values, advantages=masked_whiten(advantages, mask),
                     returns=returns)
        kl_sum = float(kl.sum(dim=1).mean())
        stats = {"reward": float(scores_t.mean()), "objective/scores": float(scores_t.mean()), "kl": kl_sum,
                 "objective/kl": kl_sum, "objective/non_score_reward": -self.ppo.kl_coef * kl_sum,
                 "completions/mean_length": float(mask.sum(dim=1).mean()), "val/mean": float(masked_mean(
                     old_values, mask)), "entropy_proxy/neg_logp": float(-masked_mean(old_logp, mask)), **means}
        return split_rollout(batch, self.args.gradient_accumulation_steps), stats

    def _reference_logprobs(self, wrapper: PolicyAndValue, batch: dict) -> torch.Tensor:
        if self.ref_model is not None:
            return response_logprobs(self.ref_model, batch, self.ppo.temperature)[0]
        with wrapper.policy.disable_adapter():  # LoRA: the base model is the reference
            return response_logprobs(wrapper.policy, batch, self.ppo.temperature)[0]

    def _record(self, part: int, shares: dict[str, float]) -> None:
        """Micro-steps' shares add up to the optimizer step's values; each step logs them with its rollout's."""
        if part == 0:
            self._step_stats = {}
        for key, value in shares.items():
            self._step_stats[key] = self._step_stats.get(key, 0.0) + value
        if part == self.args.gradient_accumulation_steps - 1:
            for key, value in {**self._rollout_stats, **self._step_stats}.items():
                self._metrics[key].append(value)

    def log(self, logs: dict[str, float], start_time: Optional[float] = None) -> None:
        if "loss" in logs and self._metrics:
            logs.update(self._mean_over_processes({k: sum(v) / len(v) for k, v in self._metrics.items()}))
            self._metrics.clear()
        super().log(logs, start_time)

    def _mean_over_processes(self, metrics: dict[str, float]) -> dict[str, float]:
        """Every process logs at the same steps with the same keys; the logs show the mean over all of them."""
        if self.args.world_size <= 1:
            return metrics
        keys = sorted(metrics)
        values = torch.tensor([metrics[k] for k in keys], dtype=torch.float64, device=self.args.device)
        return dict(zip(keys, self.accelerator.reduce(values, reduction="mean").tolist()))

    # ---- outputs: the policy as sft writes it, the value head beside it ------------------------------------------
    def _save(self, output_dir: Optional[str] = None, state_dict: Optional[dict] = None) -> None:
        from transformers.trainer import TRAINING_ARGS_NAME

        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        save_policy_and_value(self.accelerator.unwrap_model(self.model), output_dir, state_dict)
        self.processing_class.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        if self.is_fsdp_enabled:  # FSDP's own sharded model files, written by transformers
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        load_policy_and_value(self.accelerator.unwrap_model(model or self.model), resume_from_checkpoint)


def build_ppo(setup: AlignSetup, rollout_factory: Any) -> PPOTrainer:
    """rollout_factory(policy, **sampling) -> rollouts with .texts(rows, seed) (the pipeline builds it on an Engine)."""
    cfg = setup.cfg
    torch.manual_seed(cfg.seed)
    template = copy.copy(setup.template)
    template.max_length = None  # prompt + completion; prompts were length-checked by the data layer
    ref_model = setup.ref_model if cfg.train_type != "lora" else None
    if cfg.train_type != "lora" and ref_model is None:
        ref_model = copy.deepcopy(setup.model).eval().requires_grad_(False)
    policy = apply_tuner(setup.model, cfg, getattr(setup.info, "family", None))
    disable_dropout(policy)
    settings = PPOSettings.from_config(cfg)
    model = PolicyAndValue(policy, settings.temperature)
    rollouts = rollout_factory(policy, max_new_tokens=cfg.max_completion_length, temperature=cfg.temperature,
                               top_p=cfg.top_p, top_k=cfg.top_k, repetition_penalty=cfg.repetition_penalty)
    args = training_arguments(cfg, setup.output_dir, has_eval=False)
    if cfg.learning_rate is None and cfg.train_type != "lora":
        args.learning_rate = 1e-6  # full-model PPO moves far with sft's default
    if setup.val:
        logger.warning(f"ppo: the {len(setup.val)} validation rows are not used (ppo has no evaluation step)")
    return with_throughput(PPOTrainer)(
        model=model, args=args, train_rows=setup.train, tokenizer=setup.tokenizer, template=template,
        rollouts=rollouts, rewards=reward_functions(setup), settings=settings, ref_model=ref_model,
        callbacks=callbacks(setup))

"""A compact PPO for language models (TRL 1.x no longer ships one).

Each step: sample completions for a batch of prompts through swiftall's Engine (the pt engine over the policy being
trained, wired by the pipeline), score them with reward models / reward functions, compute per-token rewards with a KL penalty to the
reference (with LoRA: the base with adapters disabled), values from a value head on the policy's last hidden state,
GAE advantages, then --num_ppo_epochs updates of the clipped policy objective plus the clipped value loss.
Outputs match sft: logging.jsonl, TensorBoard events, checkpoint-N folders, the final adapter/model in output_dir.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional

import torch
from torch import nn

from ...templates import IGNORE
from ...tuners import apply_tuner
from ...utils.errors import ConfigError
from ...utils.log import get_logger
from ..callbacks import JsonlLogger, TimeToFirstStep, memory_gib
from .common import AlignSetup
from .online import reward_functions
from .ppo_core import gae, masked_mean, masked_whiten, ppo_losses, token_logprobs, token_rewards
from .rewards import combine

logger = get_logger(__name__)


class ValueHead(nn.Module):
    def __init__(self, hidden_size: int):
        super().__init__()
        self.summary = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.summary.weight)
        nn.init.zeros_(self.summary.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.summary(hidden.float()).squeeze(-1)


def disable_dropout(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0


class PPOTrainer:
    """Policy + value head, reward model(s)/functions, GAE, clipped objective, KL penalty to the reference."""

    def __init__(self, setup: AlignSetup, rollout_factory: Any):
        cfg = self.cfg = setup.cfg
        if cfg.resume_from_checkpoint:
            raise ConfigError("--rlhf_type ppo: --resume_from_checkpoint is not supported; start a new run")
        self.setup, self.output_dir, self.tokenizer = setup, Path(setup.output_dir), setup.tokenizer
        self.template = copy.copy(setup.template)
        self.template.max_length = None  # prompt + completion; prompts were length-checked by the data layer
        torch.manual_seed(cfg.seed)
        self.ref_model = setup.ref_model if cfg.train_type != "lora" else None
        if cfg.train_type != "lora" and self.ref_model is None:
            self.ref_model = copy.deepcopy(setup.model).eval().requires_grad_(False)
        self.policy = apply_tuner(setup.model, cfg, getattr(setup.info, "family", None))
        disable_dropout(self.policy)  # old/new log-probs and ratios must come from the same function (as TRL's PPO)
        self.device = next(self.policy.parameters()).device
        hidden = self.policy.config.get_text_config().hidden_size
        self.value_head = ValueHead(hidden).to(self.device)
        self.rollouts = rollout_factory(self.policy, max_new_tokens=cfg.max_completion_length,
                                        temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                                        repetition_penalty=cfg.repetition_penalty)
        self.policy.train()
        self.reward_funcs, self.reward_weights = reward_functions(setup)
        self.batch_size = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps
        per_epoch = math.ceil(len(setup.train) / self.batch_size)
        self.total_steps = cfg.max_steps if cfg.max_steps > 0 else max(1, int(per_epoch * cfg.num_train_epochs))
        self._build_optimizer()
        self.state = SimpleNamespace(global_step=0, epoch=0.0, is_world_process_zero=True, log_history=[])
        self.first_step_callback = TimeToFirstStep(setup.started)
        self.logger = JsonlLogger(self.output_dir)
        self.writer = self._tensorboard()
        self.total_tokens = 0

    # ---- setup --------------------------------------------------------------------------------
    def _build_optimizer(self) -> None:
        from transformers import get_scheduler

        cfg = self.cfg
        params = [p for p in self.policy.parameters() if p.requires_grad] + list(self.value_head.parameters())
        self.lr = cfg.learning_rate if cfg.learning_rate is not None else (1e-4 if cfg.train_type == "lora" else 1e-6)
        self.optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=cfg.weight_decay)
        updates = self.total_steps * cfg.num_ppo_epochs
        self.scheduler = get_scheduler(cfg.lr_scheduler_type, self.optimizer,
                                       num_warmup_steps=int(cfg.warmup_ratio * updates), num_training_steps=updates)
        self.params = params

    def _tensorboard(self) -> Any:
        if "tensorboard" not in self.cfg.report_to and "all" not in self.cfg.report_to:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.output_dir / "runs"))

    # ---- rollouts -----------------------------------------------------------------------------
    def _encode(self, rows: list[dict], texts: list[str]) -> dict[str, torch.Tensor]:
        """Prompt + completion through swiftall's Template; response positions in the next-token frame."""
        seqs, spans = [], []
        for row, text in zip(rows, texts):
            enc = self.template.encode(row["prompt"] + [{"role": "assistant", "content": text}])
            labels = enc.labels
            end = len(labels)
            while end > 0 and labels[end - 1] == IGNORE:
                end -= 1
            start = end
            while start > 0 and labels[start - 1] != IGNORE:
                start -= 1
            seqs.append(enc.input_ids[:end])
            spans.append((start - 1, end - 1))  # logits at t predict token t + 1
        longest = max(len(s) for s in seqs)
        width = max(b - a for a, b in spans)
        ids = torch.full((len(seqs), longest), self.tokenizer.pad_token_id, dtype=torch.long)
        attn = torch.zeros_like(ids)
        positions = torch.zeros((len(seqs), width), dtype=torch.long)
        mask = torch.zeros((len(seqs), width))
        for i, (seq, (a, b)) in enumerate(zip(seqs, spans)):
            ids[i, :len(seq)] = torch.tensor(seq)
            attn[i, :len(seq)] = 1
            positions[i, :b - a] = torch.arange(a, b)
            mask[i, :b - a] = 1
        return {k: v.to(self.device) for k, v in
                {"input_ids": ids, "attention_mask": attn, "positions": positions, "mask": mask}.items()}

    def _forward(self, model: Any, batch: dict, with_values: bool) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    output_hidden_states=with_values, use_cache=False)
        pos = batch["positions"]
        rows = torch.arange(pos.shape[0], device=pos.device).unsqueeze(1)
        logits = out.logits[rows, pos]
        targets = batch["input_ids"][rows, pos + 1]
        logp = token_logprobs(logits, targets, self.cfg.temperature)
        values = self.value_head(out.hidden_states[-1][rows, pos]) if with_values else None
        return logp, values

    def _reference(self) -> Any:
        if self.ref_model is not None:
            return self.ref_model, contextlib.nullcontext()
        return self.policy, self.policy.disable_adapter()

    @torch.no_grad()
    def rollout(self, rows: list[dict]) -> tuple[dict, dict[str, float]]:
        texts = self.rollouts.texts(rows)  # eval mode, no grad; the policy's mode is restored
        batch = self._encode(rows, texts)
        mask = batch["mask"]
        old_logp, old_values = self._forward(self.policy, batch, with_values=True)
        ref, context = self._reference()
        with context:
            ref_logp, _ = self._forward(ref, batch, with_values=False)
        columns = {k: [r.get(k) for r in rows] for k in rows[0] if k not in ("prompt", "images")}
        scores, means = combine(self.reward_funcs, self.reward_weights, [r["prompt"] for r in rows],
                                [[{"role": "assistant", "content": t}] for t in texts], columns)
        scores_t = torch.tensor(scores, dtype=torch.float32, device=self.device)
        rewards, kl = token_rewards(scores_t, old_logp, ref_logp, mask, self.cfg.kl_coef)
        advantages, returns = gae(rewards, old_values, mask, self.cfg.gamma, self.cfg.lam)
        advantages = masked_whiten(advantages, mask)
        batch.update(old_logp=old_logp, old_values=old_values, advantages=advantages, returns=returns)
        self.total_tokens += int(batch["attention_mask"].sum())
        lengths = mask.sum(dim=1)
        stats = {"reward": float(scores_t.mean()), "objective/scores": float(scores_t.mean()),
                 "kl": float(kl.sum(dim=1).mean()), "objective/kl": float(kl.sum(dim=1).mean()),
                 "objective/non_score_reward": float((-self.cfg.kl_coef * kl).sum(dim=1).mean()),
                 "completions/mean_length": float(lengths.mean()), **means}
        return batch, stats

    # ---- updates ------------------------------------------------------------------------------
    def update(self, batch: dict) -> dict[str, float]:
        cfg, mask = self.cfg, batch["mask"]
        totals: dict[str, float] = {}
        for _ in range(cfg.num_ppo_epochs):
            logp, values = self._forward(self.policy, batch, with_values=True)
            pg_loss, vf_loss, stats = ppo_losses(logp, batch["old_logp"], batch["advantages"], values,
                                                 batch["old_values"], batch["returns"], mask, cfg.cliprange,
                                                 cfg.cliprange_value)
            loss = pg_loss + cfg.vf_coef * vf_loss
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            step_stats = {"loss": loss.item(), "loss/policy": pg_loss.item(), "loss/value": vf_loss.item(),
                          "grad_norm": float(grad_norm), **stats}
            for k, v in step_stats.items():
                totals[k] = totals.get(k, 0.0) + v / cfg.num_ppo_epochs
        totals["entropy_proxy/neg_logp"] = float(-masked_mean(batch["old_logp"], mask))
        return totals

    def train(self, resume_from_checkpoint: Optional[str] = None) -> Any:
        rows = list(self.setup.train)
        rng = random.Random(self.cfg.seed)
        order: list[int] = []
        window_start, losses = time.time(), []
        for step in range(1, self.total_steps + 1):
            if len(order) < self.batch_size:
                fresh = list(range(len(rows)))
                rng.shuffle(fresh)
                order += fresh
            picked, order = order[: self.batch_size], order[self.batch_size:]
            batch, stats = self.rollout([rows[i] for i in picked])
            stats.update(self.update(batch))
            losses.append(stats["loss"])
            self.state.global_step = step
            self.state.epoch = step * self.batch_size / max(len(rows), 1)
            self.first_step_callback.on_step_end(None, self.state, None)
            if step == 1 or step % self.cfg.logging_steps == 0 or step == self.total_steps:
                elapsed = max(time.time() - window_start, 1e-9)
                stats.update(learning_rate=self.scheduler.get_last_lr()[0], step_time_s=round(elapsed, 3),
                             **memory_gib())
                self._log(stats)
                window_start = time.time()
            if step % self.cfg.save_steps == 0 and step < self.total_steps:
                self._checkpoint(step)
        if self.writer is not None:
            self.writer.close()
        return SimpleNamespace(training_loss=sum(losses) / max(len(losses), 1), global_step=self.total_steps)

    # ---- outputs ------------------------------------------------------------------------------
    def _log(self, stats: dict[str, float]) -> None:
        logs = {k: round(v, 6) if isinstance(v, float) else v for k, v in stats.items()}
        self.state.log_history.append({"step": self.state.global_step, **logs})
        self.logger.on_log(None, self.state, None, logs=logs)
        if self.writer is not None:
            for k, v in logs.items():
                self.writer.add_scalar(f"train/{k}", v, self.state.global_step)
        logger.info(f"ppo step {self.state.global_step}/{self.total_steps}: reward {stats['reward']:.3f}, "
                    f"kl {stats['kl']:.4f}, loss {stats['loss']:.4f}")

    def save_model(self, output_dir: str) -> None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.policy.save_pretrained(str(out))
        self.tokenizer.save_pretrained(str(out))
        torch.save(self.value_head.state_dict(), out / "value_head.pt")

    def save_state(self) -> None:
        state = {"global_step": self.state.global_step, "log_history": self.state.log_history}
        (self.output_dir / "trainer_state.json").write_text(json.dumps(state, indent=2) + "\n")

    def _checkpoint(self, step: int) -> None:
        self.save_model(str(self.output_dir / f"checkpoint-{step}"))
        limit = self.cfg.save_total_limit
        if limit:
            found = sorted((int(p.name.split("-")[1]), p) for p in self.output_dir.glob("checkpoint-*"))
            for _, old in found[:-limit]:
                shutil.rmtree(old, ignore_errors=True)


def build_ppo(setup: AlignSetup, rollout_factory: Any) -> PPOTrainer:
    """rollout_factory(policy, **sampling) -> rollouts with .texts(rows) (the pipeline builds it on an Engine)."""
    return PPOTrainer(setup, rollout_factory)

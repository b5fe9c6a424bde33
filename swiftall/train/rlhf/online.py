"""Online methods on TRL: GRPO and GKD (on-policy distillation from --teacher_model).

GRPO runs TRL's GRPOTrainer (rewards, group advantages, loss, KL to the reference) with one method overridden:
`_generate_single_turn`, so completions come from swiftall's pt Engine (continuous batching) built over the policy
being trained -- its current weights with the LoRA adapters active, in eval mode, without gradients -- sampling
with --temperature/--top_p/--max_completion_length; TRL's sampler repeats each prompt --num_generations times.
TRL keeps generating where the engine cannot stand in: --use_vllm (TRL's vLLM client, which syncs the trained
weights into vLLM each step), prompts with images, and models sharded by FSDP or DeepSpeed ZeRO-3.
"""
from __future__ import annotations

from typing import Any

from ...utils.errors import ConfigError
from .common import (AlignSetup, callbacks, lora_config, small_lm_head_tiles, to_dataset, trl_args,
                     with_throughput)
from .reward import load_sequence_classifier, reward_tokenizer
from .rewards import RewardModelScorer, resolve_rewards


def reward_functions(setup: AlignSetup) -> tuple[list, list[float]]:
    """--reward_funcs then --reward_model, as callables, with --reward_weights (default 1 each)."""
    cfg = setup.cfg
    funcs = resolve_rewards(cfg)
    device = next(setup.model.parameters()).device
    for i, path in enumerate(cfg.reward_model):
        model = load_sequence_classifier(path, dtype=setup.model.dtype, device=device)
        tokenizer = reward_tokenizer(path, setup.tokenizer)
        funcs.append(RewardModelScorer(model, tokenizer, name=f"reward_model{i or ''}", max_length=cfg.max_length))
    weights = list(cfg.reward_weights) or [1.0] * len(funcs)
    return funcs, weights


def engine_grpo_trainer(base: type) -> type:
    """A subclass of TRL's GRPOTrainer whose completions come from `rollout_factory(policy, **sampling)`."""

    class EngineGRPOTrainer(base):
        def __init__(self, *args: Any, rollout_factory: Any = None, **kwargs: Any):
            super().__init__(*args, **kwargs)
            policy = self.accelerator.unwrap_model(self.model)  # the PeftModel TRL built (LoRA) or the model
            self.rollouts = None if rollout_factory is None else rollout_factory(
                policy, max_new_tokens=self.max_completion_length, temperature=self.temperature, top_p=self.top_p,
                top_k=self.top_k, repetition_penalty=self.repetition_penalty)

        def _engine_generates(self, multimodal_fields: dict) -> bool:
            plugin = getattr(self.accelerator.state, "deepspeed_plugin", None)
            sharded = self.is_fsdp_enabled or (self.is_deepspeed_enabled and getattr(plugin, "zero_stage", 0) == 3)
            return self.rollouts is not None and not (self.use_vllm or multimodal_fields or sharded)

        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, *args, **kwargs):
            if not self._engine_generates(multimodal_fields):
                return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations, *args,
                                                     **kwargs)
            return self.rollouts.token_ids(prompt_ids), None  # no sampling log-probs (as TRL's transformers path)

    return EngineGRPOTrainer


def build_grpo(setup: AlignSetup, rollout_factory: Any = None) -> Any:
    from trl import GRPOConfig, GRPOTrainer

    cfg = setup.cfg
    batch = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps
    if batch % cfg.num_generations:
        raise ConfigError(f"grpo: --per_device_train_batch_size x --gradient_accumulation_steps ({batch}) counts "
                          f"completions and must be a multiple of --num_generations ({cfg.num_generations})")
    funcs, weights = reward_functions(setup)
    small_lm_head_tiles(setup.model)
    args = trl_args(GRPOConfig, setup, beta=cfg.beta, num_generations=cfg.num_generations,
                    max_completion_length=cfg.max_completion_length, temperature=cfg.temperature, top_p=cfg.top_p,
                    top_k=cfg.top_k or 0, repetition_penalty=cfg.repetition_penalty or 1.0,
                    reward_weights=weights, use_vllm=cfg.use_vllm, log_completions=False, shuffle_dataset=True)
    return with_throughput(engine_grpo_trainer(GRPOTrainer))(
        model=setup.model, reward_funcs=funcs, args=args, train_dataset=to_dataset(setup.train),
        eval_dataset=to_dataset(setup.val) if setup.val else None, processing_class=setup.tokenizer,
        callbacks=callbacks(setup), peft_config=lora_config(cfg, getattr(setup.info, "family", None)),
        rollout_factory=rollout_factory)


def build_gkd(setup: AlignSetup) -> Any:
    from trl.experimental.gkd import GKDConfig, GKDTrainer

    cfg = setup.cfg
    teacher = setup.load(cfg.teacher_model)
    if teacher.config.get_text_config().vocab_size != setup.model.config.get_text_config().vocab_size:
        raise ConfigError(f"--teacher_model {cfg.teacher_model}: its vocabulary differs from --model's; GKD needs the "
                          "same tokenizer")
    args = trl_args(GKDConfig, setup, lmbda=cfg.lmbda, beta=cfg.beta, temperature=cfg.temperature,
                    max_new_tokens=cfg.max_completion_length, seq_kd=cfg.seq_kd, max_length=cfg.max_length)
    return with_throughput(GKDTrainer)(
        model=setup.model, teacher_model=teacher, args=args, train_dataset=to_dataset(setup.train),
        eval_dataset=to_dataset(setup.val) if setup.val else None, processing_class=setup.tokenizer,
        callbacks=callbacks(setup), peft_config=lora_config(cfg, getattr(setup.info, "family", None)))

"""What PPO trains: the policy (a peft LoRA model or the full model) and a value head on its last hidden state, in
one nn.Module so transformers' Trainer builds one optimizer over both, wraps both for distributed runs and saves
both in every checkpoint.

On disk a PPO folder (the run folder or a checkpoint-N) holds the policy exactly as sft writes it (the adapter, or the
full model), so `infer --adapters` and `export` read it as any other run, and the value head beside it in
`value_head.pt` (a state dict), which resume reads back.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from ...utils.errors import ConfigError
from ...utils.log import get_logger
from .ppo_core import token_logprobs

logger = get_logger(__name__)
VALUE_HEAD = "value_head.pt"


class ValueHead(nn.Module):
    def __init__(self, hidden_size: int):
        super().__init__()
        self.summary = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.summary.weight)
        nn.init.zeros_(self.summary.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.summary(hidden.float()).squeeze(-1)


def disable_dropout(model: nn.Module) -> None:
    """Old and new log-probs and their ratios must come from the same function (as TRL's PPO)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0


def response_logprobs(model: Any, batch: dict, temperature: float,
                      with_hidden: bool = False) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Log-probs of the response tokens under a causal LM ([rows, response positions]), and the last hidden state at
    those positions when asked (the value head reads it)."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                output_hidden_states=with_hidden, use_cache=False)
    pos = batch["positions"]
    rows = torch.arange(pos.shape[0], device=pos.device).unsqueeze(1)
    logp = token_logprobs(out.logits[rows, pos], batch["input_ids"][rows, pos + 1], temperature)
    return logp, (out.hidden_states[-1][rows, pos] if with_hidden else None)


class PolicyAndValue(nn.Module):
    """forward(batch) -> (response log-probs, values): the one module the Trainer optimises and wraps."""

    def __init__(self, policy: nn.Module, temperature: float):
        super().__init__()
        self.policy = policy
        self.temperature = temperature
        hidden = policy.config.get_text_config().hidden_size
        device = next(policy.parameters()).device
        self.value_head = ValueHead(hidden).to(device)
        if hasattr(policy, "hf_device_map"):  # a model placed over several devices stays where it is
            self.hf_device_map = policy.hf_device_map

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "positions": positions}
        logp, hidden = response_logprobs(self.policy, batch, self.temperature, with_hidden=True)
        return logp, self.value_head(hidden)

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs: Optional[dict] = None,
                                        **options: Any) -> None:
        """--gradient_checkpointing: the Trainer asks the module it trains; the policy's layers do it."""
        kwargs = activation_checkpointing_kwargs or {"use_reentrant": False}
        if hasattr(self.policy, "activation_checkpointing_enable"):  # transformers 5
            self.policy.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs, **options)
        else:
            self.policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        if hasattr(self.policy, "enable_input_require_grads"):
            self.policy.enable_input_require_grads()


def is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "disable_adapter")


def save_policy_and_value(wrapper: PolicyAndValue, folder: str, state_dict: Optional[dict] = None,
                          is_main_process: bool = True) -> None:
    """The policy through save_pretrained (adapter or full model) and the value head in value_head.pt. A
    `state_dict` of the whole module (gathered by DeepSpeed/FSDP) is split between the two."""
    policy_state = value_state = None
    if state_dict:
        policy_state = {k[len("policy."):]: v for k, v in state_dict.items() if k.startswith("policy.")}
        value_state = {k[len("value_head."):]: v for k, v in state_dict.items() if k.startswith("value_head.")}
    wrapper.policy.save_pretrained(folder, state_dict=policy_state, is_main_process=is_main_process)
    if is_main_process:
        state = value_state or {k: v.detach().cpu() for k, v in wrapper.value_head.state_dict().items()}
        torch.save(state, os.path.join(folder, VALUE_HEAD))


def load_policy_and_value(wrapper: PolicyAndValue, folder: str) -> None:
    """Resume: the policy's trained weights and the value head from a PPO checkpoint-N folder."""
    path = Path(folder)
    if not (path / VALUE_HEAD).is_file():
        raise ConfigError(f"--resume_from_checkpoint {folder}: no {VALUE_HEAD} in it; resume a --rlhf_type ppo run "
                          "from one of its own checkpoint-N folders")
    device = next(wrapper.value_head.parameters()).device
    wrapper.value_head.load_state_dict(torch.load(path / VALUE_HEAD, map_location=device, weights_only=True))
    if is_peft(wrapper.policy):
        if not any((path / n).is_file() for n in ("adapter_model.safetensors", "adapter_model.bin")):
            raise ConfigError(f"--resume_from_checkpoint {folder}: no adapter in it, but this run trains LoRA; "
                              "resume with the --train_type the checkpoint was written with")
        wrapper.policy.load_adapter(str(path), wrapper.policy.active_adapter, is_trainable=True)
        return
    _load_full(wrapper.policy, path)


def _load_full(model: nn.Module, path: Path) -> None:
    from transformers.trainer_utils import load_sharded_checkpoint

    if (path / "model.safetensors").is_file():
        from safetensors.torch import load_file

        result = model.load_state_dict(load_file(str(path / "model.safetensors")), strict=False)
    elif (path / "model.safetensors.index.json").is_file():
        result = load_sharded_checkpoint(model, str(path), strict=False)
    else:
        raise ConfigError(f"--resume_from_checkpoint {path}: no model.safetensors in it, but this run trains the "
                          "full model; resume with the --train_type the checkpoint was written with")
    tied = {name for name, _ in model.named_parameters(remove_duplicate=True)}
    missing = [k for k in result.missing_keys if k in tied]  # tied copies (lm_head = embeddings) are not saved
    if missing or result.unexpected_keys:
        raise ConfigError(f"--resume_from_checkpoint {path}: the saved model does not match this model (missing "
                          f"{missing[:3]}, unexpected {list(result.unexpected_keys)[:3]}); resume with the same "
                          "--model")

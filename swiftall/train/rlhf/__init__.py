"""Alignment trainers: TRL for every method it ships, and a compact PPO of our own.

METHODS maps --rlhf_type to (data kind for swiftall.data.preference, builder module, builder function, whether it
keeps a reference model, the transformers Auto class of the trained model).
"""
from __future__ import annotations

import importlib
from typing import Any, NamedTuple


class Method(NamedTuple):
    data: str
    module: str
    builder: str
    needs_ref: bool
    auto_class: str = "AutoModelForCausalLM"


METHODS: dict[str, Method] = {
    "dpo": Method("pairs", "offline", "build_dpo", True),
    "kto": Method("kto", "offline", "build_kto", True),
    "cpo": Method("pairs", "offline", "build_cpo", False),
    "simpo": Method("pairs", "offline", "build_cpo", False),
    "orpo": Method("pairs", "offline", "build_orpo", False),
    "rm": Method("pairs", "reward", "build_rm", False, "AutoModelForSequenceClassification"),
    "grpo": Method("prompts", "online", "build_grpo", True),
    "gkd": Method("messages", "online", "build_gkd", False),
    "ppo": Method("prompts", "ppo", "build_ppo", True),
}


def build_alignment_trainer(setup: Any, **kwargs: Any) -> Any:
    method = METHODS[setup.cfg.rlhf_type]
    module = importlib.import_module(f"{__name__}.{method.module}")
    return getattr(module, method.builder)(setup, **kwargs)

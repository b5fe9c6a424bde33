"""Reward models: training one with TRL's RewardTrainer (`--rlhf_type rm`), and loading one for grpo/ppo."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...utils.errors import ConfigError
from .common import AlignSetup, callbacks, lora_config, to_dataset, trl_args, with_throughput


def load_sequence_classifier(path: str | Path, dtype: Any = None, device: Any = None) -> Any:
    """A reward model folder: a full sequence-classification model, a causal LM folder (a fresh 1-output head is
    added, for training), or a LoRA run of `--rlhf_type rm` (merged onto its base for scoring)."""
    from transformers import AutoModelForSequenceClassification

    path = Path(path)
    adapter = path / "adapter_config.json"
    if adapter.is_file():
        from peft import PeftModel

        base = json.loads(adapter.read_text()).get("base_model_name_or_path")
        if not base or not Path(base).exists():
            raise ConfigError(f"--reward_model {path}: its base model {base!r} is not a local folder")
        model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, dtype=dtype)
        model = PeftModel.from_pretrained(model, str(path)).merge_and_unload()
    elif (path / "config.json").is_file():
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=dtype)
    else:
        raise ConfigError(f"--reward_model {path}: not a model folder (no config.json or adapter_config.json)")
    return model.to(device) if device is not None else model


def reward_tokenizer(path: str | Path, fallback: Any) -> Any:
    from transformers import AutoTokenizer

    path = Path(path)
    if (path / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(path)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = fallback.chat_template
        return tokenizer
    return fallback


def build_rm(setup: AlignSetup) -> Any:
    from trl import RewardConfig, RewardTrainer

    cfg = setup.cfg
    model = setup.model
    model.config.pad_token_id = setup.tokenizer.pad_token_id
    peft = lora_config(cfg, getattr(setup.info, "family", None), task_type="SEQ_CLS")
    if peft is not None:
        peft.modules_to_save = sorted(set(peft.modules_to_save or []) | {"score"})
    args = trl_args(RewardConfig, setup, max_length=cfg.max_length)
    return with_throughput(RewardTrainer)(
        model=model, args=args, train_dataset=to_dataset(setup.train),
        eval_dataset=to_dataset(setup.val) if setup.val else None, processing_class=setup.tokenizer,
        callbacks=callbacks(setup), peft_config=peft)

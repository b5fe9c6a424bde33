"""The swiftall.yaml `swiftall init` writes: the chosen command's flags, nested by section names as `--config`
reads them, with a header that says where it came from."""
from __future__ import annotations

from typing import Any

import yaml

from ..plan.setting import Setting

HEADER = "# written by swiftall init"
COMMAND_OF_GOAL = {"chat": "infer", "finetune": "sft", "align": "rlhf", "serve": "deploy", "evaluate": "eval"}


def run_line(command: str, path: Any) -> str:
    return f"swiftall {command} --config {path}"


def model_keys(model: str, s: Setting) -> dict[str, Any]:
    keys: dict[str, Any] = {"model": model, "torch_dtype": s.dtype}
    if s.quant_bits:
        keys.update(quant_method="bnb", quant_bits=s.quant_bits, bnb_4bit_quant_type="nf4")
    return keys


def training_keys(s: Setting, cfg: Any, model: str) -> dict[str, Any]:
    return {"train_type": s.train_type, "per_device_train_batch_size": s.batch, "max_length": s.length,
            "gradient_checkpointing": s.checkpointing, "num_train_epochs": 3,
            "output_dir": f"output/{model}-{'dpo' if s.task == 'rlhf' else 'sft'}"}


def yaml_for(goal: str, model: str, s: Setting, cfg: Any) -> str:
    keys = model_keys(model, s)
    if goal == "finetune":
        keys.update(dataset=list(cfg.dataset), **training_keys(s, cfg, model))
        if cfg.model_name:
            keys.update(model_name=list(cfg.model_name), model_author=list(cfg.model_author))
    elif goal == "align":
        data = [d for d in cfg.dataset if d != "swiftall-demo"] or ["preference-demo"]
        keys.update(rlhf_type="dpo", dataset=data, **training_keys(s, cfg, model))
    elif goal == "evaluate":
        keys.update(eval_dataset=["gsm8k"], eval_limit=50)
    elif goal == "chat":
        keys.update(max_new_tokens=512)
    body = yaml.safe_dump(keys, sort_keys=False, allow_unicode=True)
    planned = f"# planned: {s.describe()}\n"
    return f"{HEADER}; run it with: {run_line(COMMAND_OF_GOAL[goal], 'THIS_FILE')}\n{planned}{body}"

"""What every alignment trainer shares: TRL configs from swiftall's flags, LoRA through TRL's peft_config (so
the reference is the base with adapters disabled), throughput and memory in the logs, swiftall's callbacks."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Optional

from ..callbacks import JsonlLogger, TimeToFirstStep, memory_gib
from ..trainer import training_arguments


@dataclasses.dataclass
class AlignSetup:
    """Everything a method builder needs; filled by the rlhf pipeline."""

    cfg: Any
    model: Any                       # the start model (no adapters attached)
    tokenizer: Any
    template: Any
    train: list[dict]
    val: list[dict]
    output_dir: Path
    started: float
    info: Any = None
    ref_model: Any = None            # an explicit reference model (full fine-tuning), else None
    load: Any = None                 # load(path, auto_class=...) -> a model on the training device


def trl_args(config_cls: type, setup: AlignSetup, **extra: Any) -> Any:
    """swiftall's TrainingArguments (the same as sft's) turned into a TRL config with the method's fields."""
    base = training_arguments(setup.cfg, setup.output_dir, has_eval=bool(setup.val))
    names = {f.name for f in dataclasses.fields(config_cls) if f.init}
    kwargs = {f.name: getattr(base, f.name) for f in dataclasses.fields(type(base)) if f.init and f.name in names}
    kwargs["train_sampling_strategy"] = "random"  # TRL's rows carry no input_ids to group by length
    if "eval_on_start" in names:
        kwargs["eval_on_start"] = bool(getattr(setup.cfg, "eval_on_start", False) and setup.val)
    kwargs.update(extra)
    return config_cls(**kwargs)


def lora_config(cfg: Any, family: Any = None, task_type: str = "CAUSAL_LM", model: Any = None) -> Optional[Any]:
    """The peft config TRL applies itself (None for full fine-tuning). Given the model, a multimodal family's
    default targets are the linear layers of the parts that train (--freeze_vit/--freeze_aligner/--freeze_llm),
    as in sft."""
    if cfg.train_type != "lora":
        return None
    from peft import LoraConfig

    from ...tuners.apply import lora_targets
    from ...tuners.freeze import multimodal_lora_targets

    targets = (multimodal_lora_targets(model, cfg, family) if model is not None else None) or lora_targets(cfg, family)
    modules = list(cfg.modules_to_save) or None
    return LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, task_type=task_type, modules_to_save=modules,
                      use_dora=cfg.use_dora, use_rslora=cfg.use_rslora)


TORCH_LM_HEAD_COLUMNS = 4096  # vocabulary columns per tile of TRL's fused LM head where it folds tiles in torch


def small_lm_head_tiles(model: Any) -> None:
    """Smaller tiles for TRL's fused LM head where it runs without Triton (CPU), for the same log-probs.

    DPO, KTO and GRPO get per-token log-probs from TRL's fused LM head: it projects every position of the batch
    (chosen and rejected, prompt and padding included) through the output layer in tiles of up to 4096 positions x
    32768 vocabulary columns, folded into an online log-sum-exp. On CUDA a Triton kernel folds each tile in place;
    elsewhere the torch fallback makes about five fp32 temporaries of a tile's size (0.5 GiB each at 4096 positions),
    in the forward and again in the backward. 4096 columns keep each under 64 MiB: DPO with LoRA on the embedded
    model (bench_dpo's rows, 4 pairs a step) peaked at 6.8 GiB instead of 8.8, with the same losses and log-probs up
    to float rounding (the log-sum-exp is exact over any tiling). TRL reads the module constant at each call; a TRL
    without it is left alone."""
    import trl.trainer.utils as trl_utils
    from trl.kernels import chunked_logprob

    device = next(model.parameters()).device
    use_triton = getattr(chunked_logprob, "_use_triton", None)
    if use_triton is None or use_triton(device):
        return
    if getattr(trl_utils, "_CHUNKED_LOGPROB_CHUNK_SIZE", 0) > TORCH_LM_HEAD_COLUMNS:
        trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE = TORCH_LM_HEAD_COLUMNS


def callbacks(setup: AlignSetup) -> list:
    return [JsonlLogger(setup.output_dir), TimeToFirstStep(setup.started)]


def to_dataset(rows: list[dict]) -> Any:
    from datasets import Dataset

    return Dataset.from_list(rows)


class ThroughputMixin:
    """Put tokens/s and memory into the logs of any transformers/TRL trainer, like sft's SwiftTrainer."""

    _tp_tokens = 0
    _tp_start: Optional[float] = None
    total_tokens = 0

    def compute_loss(self, model, inputs, *args: Any, **kwargs: Any):
        if model.training and isinstance(inputs, dict):
            n = count_tokens(inputs)
            self._tp_tokens += n
            self.total_tokens += n
        return super().compute_loss(model, inputs, *args, **kwargs)

    def log(self, logs: dict[str, float], start_time: Optional[float] = None) -> None:
        if "loss" in logs:
            now = time.time()
            start = self._tp_start or getattr(self, "_tp_created", now)
            if self._tp_tokens:
                logs["tokens_per_second"] = round(self._tp_tokens / max(now - start, 1e-9), 2)
            logs.update(memory_gib())
            self._tp_tokens, self._tp_start = 0, now
        super().log(logs, start_time)


def count_tokens(inputs: dict) -> int:
    for keys in (("attention_mask",), ("prompt_mask", "completion_mask"), ("chosen_attention_mask",
                                                                           "rejected_attention_mask")):
        if all(k in inputs for k in keys):
            return int(sum(inputs[k].sum() for k in keys))
    return 0


def with_throughput(trainer_cls: type) -> type:
    """A subclass of a TRL trainer that also logs throughput and memory."""
    cls = type(f"Swift{trainer_cls.__name__}", (ThroughputMixin, trainer_cls), {})
    cls._tp_created = time.time()
    return cls

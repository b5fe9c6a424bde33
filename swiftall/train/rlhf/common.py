"""What every alignment trainer shares: TRL configs from swiftall's flags, LoRA through TRL's peft_config (so
the reference is the base with adapters disabled), throughput and memory in the logs, swiftall's callbacks."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

from ..callbacks import JsonlLogger, TimeToFirstStep
from ..throughput import with_throughput  # noqa: F401  (the trainers import it from here)
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
    """The peft config TRL applies itself (None for full fine-tuning): LoRA or another peft tuner (tuners/
    peft_tuners.py). Given the model, a multimodal family's default targets are the linear layers of the parts that
    train (--freeze_vit/--freeze_aligner/--freeze_llm), as in sft."""
    if cfg.train_type == "full":
        return None
    from ...tuners.peft_tuners import peft_config

    return peft_config(cfg, model, family, task_type)


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
    labelled_positions_only(trl_utils)


def labelled_positions_only(trl_utils: Any) -> None:
    """TRL's fused LM head scores only the positions with a label on Triton devices, and every position elsewhere
    (to keep tile shapes fixed for compilers such as Neuron's); on a CPU, which compiles nothing here, the prompt and
    pad positions were projected through the whole vocabulary for nothing. The choice reads `_use_triton` from
    trl.trainer.utils (the kernel itself reads its own module's), so only it changes: the log-probs are the same."""
    choose = getattr(trl_utils, "_use_triton", None)
    if choose is None or getattr(choose, "_swiftall_cpu", False):
        return

    def compact(device: Any) -> bool:
        return device.type == "cpu" or choose(device)

    compact._swiftall_cpu = True
    trl_utils._use_triton = compact


def callbacks(setup: AlignSetup) -> list:
    return [JsonlLogger(setup.output_dir), TimeToFirstStep(setup.started)]


def to_dataset(rows: list[dict]) -> Any:
    from datasets import Dataset

    return Dataset.from_list(rows)

"""What is planned: a command's settings that decide its memory and time, in one small frozen dataclass."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

TRAIN_TASKS = ("sft", "pt", "rlhf")
REFERENCE_METHODS = ("dpo", "kto", "grpo", "ppo")  # methods that keep a reference model
PAIRED_METHODS = ("dpo", "cpo", "simpo", "orpo", "rm")  # chosen and rejected in one batch
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class Setting:
    task: str = "sft"                 # sft, pt, rlhf, infer, deploy
    rlhf_type: str = "dpo"
    train_type: str = "lora"
    lora_rank: int = 8
    quant_bits: Optional[int] = None  # 4 or 8: a bnb-quantized base (QLoRA)
    dtype: str = "float32"            # resolved: float32, bfloat16, float16
    batch: int = 1                    # rows per device per step (training) or requests together (inference)
    length: int = 2048                # tokens per row (training) or prompt tokens (inference)
    new_tokens: int = 512             # inference: generated tokens per request
    checkpointing: bool = False
    optim: str = "adamw_torch"
    zero_stage: int = 0               # 0 none, 1 optimizer, 2 + gradients, 3 + weights (FSDP full shard: 3)
    nproc: int = 1
    device: str = "cpu"               # cpu or cuda
    media_items: int = 0              # images/clips per row for multimodal models
    attn: str = "sdpa"                # eager keeps the attention scores (batch x heads x length^2) per layer

    @property
    def training(self) -> bool:
        return self.task in TRAIN_TASKS

    @property
    def dtype_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def sequences(self) -> int:
        """Sequences one training step runs through the model (paired methods: chosen and rejected)."""
        paired = self.task == "rlhf" and self.rlhf_type in PAIRED_METHODS
        return self.batch * (2 if paired else 1)

    def with_(self, **changes: Any) -> "Setting":
        return replace(self, **changes)

    def describe(self) -> str:
        if not self.training:
            return f"{self.task} {self.dtype}, {self.batch} requests x {self.length}+{self.new_tokens} tokens"
        method = "QLoRA" if self.quant_bits else ("full" if self.train_type == "full" else self.train_type)
        extra = ", checkpointing" if self.checkpointing else ""
        task = f"rlhf {self.rlhf_type}" if self.task == "rlhf" else self.task
        return f"{task} {method} {self.dtype}, batch {self.batch} x {self.length} tokens{extra}"

    def flags(self) -> list[str]:
        """The command-line flags of this setting (what `swiftall sft` needs to run it)."""
        out = ["--train_type", self.train_type] if self.training else []
        if self.quant_bits:
            out += ["--quant_method", "bnb", "--quant_bits", str(self.quant_bits)]
        if self.training:
            out += ["--per_device_train_batch_size", str(self.batch), "--max_length", str(self.length)]
            if self.checkpointing:
                out += ["--gradient_checkpointing", "true"]
        else:
            out += ["--max_batch_size", str(self.batch), "--max_length", str(self.length)]
        return out + ["--torch_dtype", self.dtype]

"""Speed paths of training (sft/pt): each computes what the plain path computes, and can be switched off."""
from __future__ import annotations

from dataclasses import dataclass

from ..utils.errors import ConfigError
from .base import Section, arg


@dataclass
class SpeedSection(Section):
    name = "speed"
    title = "training speed"
    lean_lora: bool = arg(False, "LoRA on CPU: dropout and lora_A in one step that keeps a one-byte mask for "
                          "backward instead of a float mask and a dropped copy of the input (same masks, same "
                          "losses; 19% fewer saved activation bytes on SmolLM2-135M, peak RSS unchanged there)")
    torch_compile: bool = arg(False, "torch.compile the model for training (transformers' torch_compile, inductor); "
                              "the first step compiles, and a new batch shape may compile again")
    use_liger_kernel: bool = arg(False, "Liger Kernel's fused Triton kernels (linear cross-entropy, RMSNorm, RoPE, "
                                 "SwiGLU) on a CUDA GPU; needs pip install 'swiftall[liger]'")

    def check(self) -> None:
        import importlib.util

        if self.use_liger_kernel and importlib.util.find_spec("liger_kernel") is None:
            raise ConfigError("--use_liger_kernel: the liger-kernel package is not installed; install it with "
                              "pip install 'swiftall[liger]' (it runs on CUDA GPUs), or drop the flag")

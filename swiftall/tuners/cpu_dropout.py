"""LoRA's input dropout on a CPU, drawn faster.

peft applies a dropout to the input of every adapted layer (seven per decoder layer with the default all-linear
targets, `--lora_dropout 0.05` as in ms-swift). On a CPU, torch's dropout draws its mask with its Bernoulli sampler,
which took 13% of a padding-free LoRA SFT step on SmolLM2-135M here (`benchmarks/gpu_profile.py`:
`aten::bernoulli_`, 2.2 ms per call). `CpuDropout` draws the same mask from 31-bit random integers of torch's CPU
generator (seeded by `--seed` as before): an element is kept when its integer is at least p * 2^31, so it is kept with
probability 1 - p (to within 2^-32), and kept values are scaled by 1 / (1 - p), as torch's dropout does; the
backward multiplies by the same mask and scale, kept as booleans (1 byte an element where torch keeps 4). Only the
random numbers differ from torch's. CUDA tensors, eval mode, p = 0 or 1 and in-place dropouts take torch's own path.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

_RANGE = 2 ** 31   # torch's random_() on int32 draws from [0, 2^31 - 1]


class _Kept(torch.autograd.Function):
    """x * scale where keep, else 0; the backward keeps only the boolean mask (torch's CPU dropout keeps its mask
    in x's dtype: 4 bytes an element in float32, for every adapted layer's input until the backward)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return torch.where(keep, x * scale, 0.0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        (keep,) = ctx.saved_tensors
        return torch.where(keep, grad * ctx.scale, 0.0), None, None


class CpuDropout(nn.Dropout):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.inplace or not 0.0 < self.p < 1.0 or x.device.type != "cpu":
            return super().forward(x)
        keep = torch.empty(x.shape, dtype=torch.int32).random_() >= round(self.p * _RANGE)
        return _Kept.apply(x, keep, 1.0 / (1.0 - self.p))


def install(model: Any) -> int:
    """Put CpuDropout in place of the plain nn.Dropout of every peft LoRA layer (`lora_dropout`); returns how many."""
    count = 0
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if not isinstance(dropouts, nn.ModuleDict):
            continue
        for name, dropout in list(dropouts.items()):
            if type(dropout) is nn.Dropout:
                dropouts[name] = CpuDropout(dropout.p)
                count += 1
    return count

"""LoRA dropout on CPU with cheap masks: 16-bit random integers instead of torch's Bernoulli sampler.

On CPU, nn.Dropout draws a float mask with `bernoulli_` (one Mersenne-twister draw and a float compare per element,
about 8x slower here than drawing 64-bit integers), scales it and keeps it for backward. SmolLM2-135M's LoRA
adapts 210 linears, so a step draws 210 masks the size of each layer's input: 11% of a profiled step went to
`bernoulli_` alone. FastDropout draws one 64-bit integer per four elements, reads it as four 16-bit ones and keeps
an element when its 16 bits are at or above the drop threshold: the drop probability is p rounded to 1/65536
(0.05 -> 0.0500031), each element independent; the float mask is then scaled by 1/(1-p) and multiplied in as
nn.Dropout does (same floats, same products, the same mask kept for backward). The masks come from torch's default
generator, so a seeded run repeats itself, but they are other draws than nn.Dropout's: `--fast_dropout false` gives
peft's own masks. On other devices (CUDA draws its masks in a fused kernel) and in eval it is nn.Dropout.
"""
from __future__ import annotations

from typing import Any

import torch

_SPAN = 1 << 16


def drop_threshold(p: float) -> int:
    """The int16 value at or above which an element is kept: P(drop) = round(p * 65536) / 65536."""
    return -(_SPAN // 2) + round(p * _SPAN)


def _words(x: torch.Tensor) -> torch.Tensor:
    """16 random bits per element of x (one 64-bit draw of torch's generator per four elements), in x's shape."""
    n = x.numel()
    words = torch.randint(-(1 << 63), (1 << 63) - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
    return words.view(torch.int16)[:n].view(x.shape)


def draw_keep(x: torch.Tensor, p: float) -> torch.Tensor:
    """A bool mask of x's shape, True where the element is kept (probability 1 - p, p rounded to 1/65536)."""
    return _words(x) >= drop_threshold(p)


def draw_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """nn.Dropout's float mask from the same draws as draw_keep: 1/(1-p) where kept, else 0 (the compare writes
    floats directly: a bool mask converted afterwards costs 6x more here)."""
    mask = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    torch.ge(_words(x), drop_threshold(p), out=mask)
    return mask.div_(1 - p)  # nn.Dropout's own scaling of its mask


def keep_scale(p: float, dtype: torch.dtype) -> float:
    """The factor nn.Dropout scales kept elements by, as that dtype rounds it."""
    return (torch.ones((), dtype=dtype) / (1 - p)).item()


def masked(x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
    """x where kept, scaled; 0 elsewhere (no float copy of the bool mask)."""
    return torch.where(keep, x, 0).mul_(scale)


class FastDropout(torch.nn.Dropout):
    """nn.Dropout whose training masks on CPU come from 16-bit integers (see the module's docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu" or self.inplace:
            return super().forward(x)
        return x * draw_mask(x, self.p)  # autograd keeps the float mask, as nn.Dropout's does

    def draw(self, x: torch.Tensor) -> torch.Tensor:
        """The bool form of the mask forward would draw next (lean_lora's one-byte copy)."""
        return draw_keep(x, self.p)


def use_fast_dropout(model: Any) -> int:
    """Swap every LoRA dropout of `model` (peft's `lora_dropout` ModuleDicts: LoRA, DoRA, AdaLoRA, ...) with p > 0
    for FastDropout; returns how many were swapped."""
    swapped = 0
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if not isinstance(dropouts, torch.nn.ModuleDict):
            continue
        for name, dropout in dropouts.items():
            if type(dropout) is torch.nn.Dropout and dropout.p > 0 and not dropout.inplace:
                fast = FastDropout(dropout.p)
                fast.train(dropout.training)
                dropouts[name] = fast
                swapped += 1
    return swapped

"""Lean LoRA dropout: the same dropout mask and the same numbers as peft's LoRA layers, with less kept for backward.

peft computes `lora_B(lora_A(dropout(x))) * scaling`: autograd then keeps, for each adapted linear, the float
dropout mask and the dropped copy of x (two tensors the size of the layer's input; q, k and v keep three pairs for
one shared input). Here one autograd function does dropout and lora_A together: it keeps x itself (shared by the
modules that read it) and a one-byte mask, and rebuilds the dropped input in backward. The mask comes from the
draw the layer's own dropout would make on CPU (nn.Dropout's `empty_like(x).bernoulli_(1 - p)`, or FastDropout's
16-bit integers), scaled by the same 1/(1-p), so a seeded run draws the same masks and trains to the same losses.
Layers in any other state (merged, disabled, DoRA or another
variant, several adapters, eval, no dropout) run peft's own forward.
"""
from __future__ import annotations

import types
from typing import Any

ORIGINAL = "_swiftall_lean_original_forward"


def _lean_down():
    import torch

    from .fast_dropout import masked as _dropped  # the bits of x * (mask / (1 - p)) without a float mask

    class LeanDropoutDown(torch.autograd.Function):
        """h = dropout(x) @ A^T, keeping x and a bool mask (not the float mask and the dropped copy)."""

        @staticmethod
        def forward(ctx, x, keep, weight, inv):
            ctx.save_for_backward(x, keep, weight)
            ctx.inv = inv
            return torch.nn.functional.linear(_dropped(x, keep, inv), weight)

        @staticmethod
        def backward(ctx, grad):
            x, keep, weight = ctx.saved_tensors
            grad_x = grad_w = None
            if ctx.needs_input_grad[0]:
                grad_x = _dropped(grad.matmul(weight), keep, ctx.inv)
            if ctx.needs_input_grad[2]:
                dropped = _dropped(x, keep, ctx.inv).reshape(-1, x.shape[-1])
                grad_w = grad.reshape(-1, grad.shape[-1]).t().mm(dropped)
            return grad_x, None, grad_w, None

    return LeanDropoutDown


_FUNCTION: dict[str, Any] = {}


def _plain_lora(layer: Any, x: Any) -> tuple[Any, Any, Any, float] | None:
    """(lora_A, lora_B, the dropout module, scaling) when the lean path computes exactly what peft would, else None."""
    import torch

    if layer.disable_adapters or layer.merged or not layer.training or not torch.is_grad_enabled():
        return None
    active = [a for a in layer.active_adapters if a in layer.lora_A.keys()]
    if len(active) != 1 or active[0] in getattr(layer, "lora_variant", {}):
        return None
    name = active[0]
    lora_a, dropout = layer.lora_A[name], layer.lora_dropout[name]
    if not isinstance(dropout, torch.nn.Dropout) or not 0 < dropout.p < 1 or x.dtype != lora_a.weight.dtype \
            or x.device.type != "cpu":  # CUDA's dropout draws its mask in a fused kernel of its own
        return None
    return lora_a, layer.lora_B[name], dropout, layer.scaling[name]


def lean_forward(self: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
    import torch

    parts = None if args or kwargs else _plain_lora(self, x)
    if parts is None:
        return getattr(self, ORIGINAL)(x, *args, **kwargs)
    from .fast_dropout import keep_scale

    lora_a, lora_b, dropout, scaling = parts
    result = self.base_layer(x)
    draw = getattr(dropout, "draw", None)  # FastDropout's own draw, else nn.Dropout's on CPU
    keep = draw(x) if draw else torch.empty_like(x).bernoulli_(1 - dropout.p).bool()
    inv = keep_scale(dropout.p, x.dtype)  # the float nn.Dropout scales by
    if "fn" not in _FUNCTION:
        _FUNCTION["fn"] = _lean_down()
    hidden = _FUNCTION["fn"].apply(x, keep, lora_a.weight, inv)
    return (result + lora_b(hidden) * scaling).to(result.dtype)


def use_lean_lora(model: Any) -> int:
    """Switch every peft LoRA Linear of `model` to the lean forward, which takes over only on CPU tensors (where its
    mask draw is nn.Dropout's); returns how many layers switched."""
    from peft.tuners.lora.layer import Linear

    switched = 0
    for module in model.modules():
        if type(module) is Linear and not hasattr(module, ORIGINAL):
            setattr(module, ORIGINAL, module.forward)
            module.forward = types.MethodType(lean_forward, module)
            switched += 1
    return switched

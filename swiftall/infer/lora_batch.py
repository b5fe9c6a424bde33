"""Mixed-adapter batches with one LoRA product per layer (the serving scheduler's `adapter_names` path).

peft runs a batch whose rows ask for different LoRA adapters by splitting it in every LoRA layer: for each adapter
its rows are gathered, put through that adapter's A and B, scaled and added back -- about six small operations
per adapter per layer, plus Python to find the rows, on every decode step. Here each LoRA linear keeps its
adapters' weights stacked ([n + 1, in, r] and [n + 1, r, out], the scaling folded into B, ranks padded with zeros,
row 0 zeros for the base model and for adapters that do not touch the layer), and a step computes
`x @ A[row's adapter] @ B[row's adapter]` for all rows with two batched products. The stacks are rebuilt when
an adapter's weights change (tensor versions), are added or removed.

Plain LoRA linear layers in eval mode with frozen adapters only (served ones: no DoRA or other variants, no LoRA
bias, nothing being trained); anything else keeps peft's own path. The result equals peft's up to float rounding
(tests/test_lora_batch.py).
"""
from __future__ import annotations

import types
from typing import Any

BASE = "__base__"
_ROWS: dict[str, Any] = {"names": None, "index": {}}  # the current forward's adapter_names and its row indices


def install(model: Any) -> int:
    """Give every plain peft LoRA Linear of `model` the stacked mixed-batch forward; returns how many."""
    from peft.tuners.lora.layer import Linear

    count = 0
    for module in model.modules():
        if type(module) is Linear and "_swiftall_peft_mixed" not in module.__dict__:
            module._swiftall_peft_mixed = module._mixed_batch_forward
            module._mixed_batch_forward = types.MethodType(_stacked_forward, module)
            count += 1
    return count


def _state(layer: Any) -> tuple:
    return tuple((name, layer.lora_A[name].weight._version, layer.lora_B[name].weight._version,
                  layer.lora_A[name].weight.data_ptr(), layer.lora_B[name].weight.data_ptr(), layer.scaling[name])
                 for name in layer.lora_A.keys())


def _plain(layer: Any) -> bool:
    """Plain LoRA in eval mode with frozen weights: adapters being trained (scoring during training, GRPO's
    rollouts) keep peft's path, since an optimizer may update them without a version bump (fused AdamW does)."""
    return not layer.training and not layer.lora_variant and all(
        getattr(layer.lora_B[name], "bias", None) is None and not layer.lora_A[name].weight.requires_grad
        and not layer.lora_B[name].weight.requires_grad for name in layer.lora_A.keys())


def _stacks(layer: Any) -> tuple[tuple[str, ...], Any, Any]:
    import torch

    state = _state(layer)
    cached = layer.__dict__.get("_swiftall_stacks")
    if cached is not None and cached[0] == state:
        return cached[1]
    names = tuple(layer.lora_A.keys())
    first = layer.lora_A[names[0]].weight
    rank = max(layer.lora_A[n].weight.shape[0] for n in names)
    a = first.new_zeros(len(names) + 1, first.shape[1], rank)
    b = first.new_zeros(len(names) + 1, rank, layer.lora_B[names[0]].weight.shape[0])
    with torch.no_grad():
        for i, name in enumerate(names, start=1):
            weight_a, weight_b = layer.lora_A[name].weight, layer.lora_B[name].weight
            a[i, :, :weight_a.shape[0]] = weight_a.t()
            b[i, :weight_b.shape[1], :] = weight_b.t() * layer.scaling[name]
    layer._swiftall_stacks = (state, (names, a, b))
    return names, a, b


def _row_index(adapter_names: list[str], names: tuple[str, ...], device: Any) -> Any:
    """Each row's place in the stacks (0: no adapter here); computed once per forward for layers alike."""
    import torch

    if _ROWS["names"] is not adapter_names:  # peft hands every layer the same list within one forward
        _ROWS["names"], _ROWS["index"] = adapter_names, {}
    key = (names, device)
    if key not in _ROWS["index"]:
        where = {name: i for i, name in enumerate(names, start=1)}
        _ROWS["index"][key] = torch.tensor([where.get(name, 0) for name in adapter_names], device=device)
    return _ROWS["index"][key]


def _stacked_forward(self: Any, x: Any, *args: Any, adapter_names: list[str], **kwargs: Any) -> Any:
    import torch

    if args or x.dim() != 3 or len(adapter_names) != x.shape[0] or any(v is not None for v in kwargs.values()) \
            or not _plain(self):
        return self._swiftall_peft_mixed(x, *args, adapter_names=adapter_names, **kwargs)
    result = self.base_layer(x)
    names, a, b = _stacks(self)
    rows = _row_index(adapter_names, names, x.device)
    update = torch.bmm(torch.bmm(x.to(a.dtype), a.index_select(0, rows)), b.index_select(0, rows))
    return result + update.to(result.dtype)

"""LLaMA-Pro (block expansion): after every group of layers a copy of the group's last block is inserted with its
output projections (attention and MLP) zeroed, so each new block starts as the identity and the model answers
exactly as before; only the new blocks train. The expanded model is a plain model (config.num_hidden_layers
grows), saved and loaded like any other."""
from __future__ import annotations

import copy
from typing import Any

from ..utils.errors import ConfigError
from ..utils.log import get_logger

logger = get_logger(__name__)
OUTPUT_PROJECTIONS = ("o_proj", "down_proj", "out_proj", "dense", "c_proj", "fc2", "w2", "dense_4h_to_h")


def decoder_layers(model: Any) -> tuple[Any, str]:
    """The decoder's ModuleList and its attribute path (e.g. 'model.layers')."""
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    for path in ("model.layers", "model.language_model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers"):
        node = base
        for part in path.split("."):
            node = getattr(node, part, None)
            if node is None:
                break
        if isinstance(node, torch.nn.ModuleList):
            return node, path
    raise ConfigError(f"{type(base).__name__}: cannot find its decoder layers (looked for model.layers, transformer.h, "
                      "...); this tuner supports decoder-only language models")


def _zero_outputs(block: Any) -> int:
    """Zero the weights (and biases) of the block's output projections; returns how many were zeroed."""
    import torch

    zeroed = 0
    for name, module in block.named_modules():
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in OUTPUT_PROJECTIONS:
            torch.nn.init.zeros_(module.weight)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
            zeroed += 1
    return zeroed


def _set_layer_index(block: Any, index: int) -> None:
    for module in block.modules():
        if hasattr(module, "layer_idx"):
            module.layer_idx = index


def expand(model: Any, new_blocks: int) -> list[int]:
    """Insert `new_blocks` zero-output copies; returns the indices of the new blocks in the expanded model."""
    import torch

    layers, _ = decoder_layers(model)
    count = len(layers)
    if new_blocks > count or count % new_blocks:
        raise ConfigError(f"--llamapro_num_new_blocks {new_blocks}: the model has {count} layers, which must be a "
                          f"multiple of it (e.g. {', '.join(str(d) for d in range(1, count + 1) if count % d == 0)})")
    group = count // new_blocks
    expanded, new_indices = [], []
    for i, layer in enumerate(layers):
        expanded.append(layer)
        if (i + 1) % group == 0:
            block = copy.deepcopy(layer)
            if not _zero_outputs(block):
                raise ConfigError(f"{type(layer).__name__}: no output projection found to zero "
                                  f"({', '.join(OUTPUT_PROJECTIONS)}); llamapro cannot expand this model")
            new_indices.append(len(expanded))
            expanded.append(block)
    for index, block in enumerate(expanded):
        _set_layer_index(block, index)
    layers_parent_swap(model, torch.nn.ModuleList(expanded))
    _update_config(model, count, len(expanded), group)
    return new_indices


def layers_parent_swap(model: Any, new_layers: Any) -> None:
    _, path = decoder_layers(model)
    parent = model
    for part in path.split(".")[:-1]:
        parent = getattr(parent, part)
    setattr(parent, path.split(".")[-1], new_layers)


def _update_config(model: Any, old: int, new: int, group: int) -> None:
    config = model.config
    text = getattr(config, "text_config", None) or config
    text.num_hidden_layers = new
    types = getattr(text, "layer_types", None)
    if types and len(types) == old:   # per-layer attention kinds: a new block keeps its source's kind
        text.layer_types = [kind for i, t in enumerate(types) for kind in ([t, t] if (i + 1) % group == 0 else [t])]


def apply(model: Any, args: Any, family: Any = None, train_rows: Any = None) -> Any:
    new_indices = expand(model, args.llamapro_num_new_blocks)
    layers, path = decoder_layers(model)
    for param in model.parameters():
        param.requires_grad_(False)
    for index in new_indices:
        for param in layers[index].parameters():
            param.requires_grad_(True)
    logger.info(f"llamapro: {len(new_indices)} new blocks at {path}{new_indices} (zero outputs: answers unchanged "
                f"at step 0); {len(layers)} layers in all")
    return model

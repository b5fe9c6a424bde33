"""Bottleneck adapters (Houlsby-style, after the MLP): each decoder layer's MLP output h becomes
h + up(act(down(h))), down: hidden -> --adapter_length, up: --adapter_length -> hidden, up zero-initialised so the
model answers as before at step 0. Only the adapters train; they save as a small swiftall adapter folder that
`infer --adapters` and `deploy` load (they cannot be merged: the activation sits between the two matrices)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..utils.errors import ConfigError
from ..utils.log import get_logger
from .llamapro import decoder_layers
from .own_format import install_loader, install_saver, load_weights, read_config

logger = get_logger(__name__)
NAME = "swiftall_adapter"


def _owns(name: str) -> bool:
    return f".{NAME}." in name


def _bottleneck(hidden: int, width: int, dtype: Any, device: Any) -> Any:
    import torch

    block = torch.nn.Sequential(torch.nn.Linear(hidden, width), torch.nn.SiLU(), torch.nn.Linear(width, hidden))
    torch.nn.init.zeros_(block[2].weight)
    torch.nn.init.zeros_(block[2].bias)
    return block.to(dtype=dtype, device=device)


def _residual_hook(module: Any, inputs: Any, output: Any) -> Any:
    return output + getattr(module, NAME)(output)


def add_adapters(model: Any, width: int) -> int:
    """Attach one adapter to every decoder layer's MLP; returns how many."""
    import torch

    layers, path = decoder_layers(model)
    hidden = (getattr(model.config, "text_config", None) or model.config).hidden_size
    weight = next(p for p in model.parameters() if p.is_floating_point())
    dtype = weight.dtype if weight.dtype in (torch.float32, torch.bfloat16, torch.float16) else torch.float32
    for i, layer in enumerate(layers):
        mlp = getattr(layer, "mlp", None) or getattr(layer, "feed_forward", None)
        if mlp is None:
            raise ConfigError(f"{path}[{i}] ({type(layer).__name__}) has no mlp module; --train_type adapter "
                              "supports decoder layers with an .mlp")
        mlp.add_module(NAME, _bottleneck(hidden, width, dtype, weight.device))
        mlp.register_forward_hook(_residual_hook)
    return len(layers)


def apply(model: Any, args: Any, family: Any = None, train_rows: Any = None) -> Any:
    for param in model.parameters():
        param.requires_grad_(False)
    count = add_adapters(model, args.adapter_length)
    for name, param in model.named_parameters():
        if _owns(name):
            param.requires_grad_(True)
    install_saver(model, "adapter", {"adapter_length": args.adapter_length}, _owns)
    install_loader(model, lambda folder: load_weights(model, folder, _owns))
    logger.info(f"adapter: {count} bottleneck adapters of width {args.adapter_length} after the MLPs")
    return model


def load(model: Any, folder: str | Path) -> Any:
    """Attach a saved adapter folder to a freshly loaded base."""
    config = read_config(folder)
    add_adapters(model, int(config["adapter_length"]))
    load_weights(model, folder, _owns)
    return model.eval()

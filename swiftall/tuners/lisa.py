"""LISA (layerwise importance sampling): full training where only --lisa_activated_layers K decoder layers, drawn at
random, receive gradients; every --lisa_step_interval S steps another K are drawn. Embeddings, the output head and
the final norm train throughout (as in the paper). The optimizer holds every parameter from the start, and a
frozen layer gets no gradient, so it is neither updated nor decayed; Adam moments exist only for layers that have
been drawn."""
from __future__ import annotations

import random
from typing import Any

from transformers import TrainerCallback

from ..utils.errors import ConfigError
from ..utils.log import get_logger
from .llamapro import decoder_layers

logger = get_logger(__name__)


def apply(model: Any, args: Any, family: Any = None, train_rows: Any = None) -> Any:
    layers, _ = decoder_layers(model)
    if args.lisa_activated_layers > len(layers):
        raise ConfigError(f"--lisa_activated_layers {args.lisa_activated_layers}: the model has only {len(layers)} "
                          "layers; choose fewer")
    for param in model.parameters():
        param.requires_grad_(True)   # all in the optimizer; the callback freezes all but K layers each interval
    return model


class LisaCallback(TrainerCallback):
    """Switches the trained layers at the start of training and every `interval` steps; `history` keeps
    (step, layers) of every switch."""

    def __init__(self, model: Any, active: int, interval: int, seed: int = 42):
        self.layers, _ = decoder_layers(model)
        self.active, self.interval = active, interval
        self.rng = random.Random(seed)
        self.history: list[tuple[int, list[int]]] = []

    def switch(self, step: int) -> list[int]:
        chosen = sorted(self.rng.sample(range(len(self.layers)), self.active))
        for i, layer in enumerate(self.layers):
            for param in layer.parameters():
                param.requires_grad_(i in chosen)
        self.history.append((step, chosen))
        logger.info(f"lisa: step {step}: training layers {chosen}")
        return chosen

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.switch(state.global_step)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        step = state.global_step
        if step and step % self.interval == 0 and self.history[-1][0] != step:
            self.switch(step)

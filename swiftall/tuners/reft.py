"""ReFT through pyreft's interventions (LoReFT by default: h + R^T (W h + b - R h), R orthonormal rows of rank
--reft_rank): one intervention on the output of each layer in --reft_layers (default: all), applied at every
position, so training, `infer` and `deploy` run the same model. The base stays frozen; the interventions save as a
small swiftall adapter folder. They cannot be merged into the weights (they act on hidden states).

pyreft 0.1.0 pins transformers==4.45.1; its interventions run on current transformers, so it is installed without
its pins: pip install --no-deps pyreft==0.1.0 pyvene==0.1.8."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..utils.errors import ConfigError, MissingDependencyError
from ..utils.log import get_logger
from .llamapro import decoder_layers
from .own_format import install_saver, load_weights, read_config

logger = get_logger(__name__)
NAME = "swiftall_reft"
INSTALL = ("pip install --no-deps pyreft==0.1.0 pyvene==0.1.8 (pyreft pins transformers==4.45.1, which swiftall "
           "cannot use; its interventions run on the transformers swiftall has)")


def _pyreft() -> Any:
    try:
        import pyreft
    except ImportError as exc:
        raise MissingDependencyError(f"--train_type reft needs pyreft ({exc}): {INSTALL}") from None
    return pyreft


def _owns(name: str) -> bool:
    return f".{NAME}." in name


def _hook(module: Any, inputs: Any, output: Any) -> Any:
    intervene = getattr(module, NAME)
    if isinstance(output, tuple):
        return (intervene(output[0]), *output[1:])
    return intervene(output)


def add_interventions(model: Any, kind: str, rank: int, layers_wanted: list[int]) -> list[int]:
    pyreft = _pyreft()
    cls = getattr(pyreft, kind, None)
    if cls is None:
        raise ConfigError(f"--reft_intervention_type {kind}: pyreft has no such intervention (e.g. "
                          "LoreftIntervention, NoreftIntervention, DireftIntervention)")
    layers, path = decoder_layers(model)
    chosen = list(layers_wanted) or list(range(len(layers)))
    bad = [i for i in chosen if not 0 <= i < len(layers)]
    if bad:
        raise ConfigError(f"--reft_layers {bad}: the model has layers 0..{len(layers) - 1}")
    hidden = (getattr(model.config, "text_config", None) or model.config).hidden_size
    weight = next(p for p in model.parameters() if p.is_floating_point())
    for i in chosen:
        intervention = cls(embed_dim=hidden, low_rank_dimension=rank, dtype=weight.dtype)
        layers[i].add_module(NAME, intervention.to(weight.device))
        layers[i].register_forward_hook(_hook)
    return chosen


def apply(model: Any, args: Any, family: Any = None, train_rows: Any = None) -> Any:
    for param in model.parameters():
        param.requires_grad_(False)
    chosen = add_interventions(model, args.reft_intervention_type, args.reft_rank, args.reft_layers)
    for name, param in model.named_parameters():
        if _owns(name):
            param.requires_grad_(True)
    settings = {"reft_intervention_type": args.reft_intervention_type, "reft_rank": args.reft_rank,
                "reft_layers": chosen}
    install_saver(model, "reft", settings, _owns)
    logger.info(f"reft: {args.reft_intervention_type} of rank {args.reft_rank} on layers {chosen}")
    return model


def load(model: Any, folder: str | Path) -> Any:
    config = read_config(folder)
    add_interventions(model, config["reft_intervention_type"], int(config["reft_rank"]), config["reft_layers"])
    load_weights(model, folder, _owns)
    return model.eval()

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
from .own_format import install_loader, install_saver, load_weights, read_config

logger = get_logger(__name__)
NAME = "swiftall_reft"
ROTATION = "rotation"   # the computed R saved under <intervention>.rotation
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


def _keep_orthogonal(intervention: Any) -> None:
    """Householder orthogonal parametrizations (torch's, for a tall R) read the diagonal of their stored matrix as
    the signs +-1 (`.int()`), and take no gradient there; weight decay shrinks it (1 -> 0.99 -> int 0), which zeroes
    R, makes the intervention the identity and stops every gradient (a flat loss). Put the signs back."""
    import torch

    for module in intervention.modules():
        plist = getattr(module, "parametrizations", None)
        if plist is None or "weight" not in plist:
            continue
        if getattr(getattr(plist["weight"][0], "orthogonal_map", None), "name", None) != "householder":
            continue   # matrix_exp/cayley maps do not read the diagonal as signs
        diagonal = plist["weight"].original.diagonal(dim1=-2, dim2=-1)
        if bool((diagonal.abs() != 1).any()):
            with torch.no_grad():
                diagonal.copy_(torch.where(diagonal < 0, -1.0, 1.0).to(diagonal.dtype))


def _hook(module: Any, inputs: Any, output: Any) -> Any:
    intervene = getattr(module, NAME)
    _keep_orthogonal(intervene)
    if isinstance(output, tuple):
        return (intervene(output[0]), *output[1:])
    return intervene(output)


def add_interventions(model: Any, kind: str, rank: int, layers_wanted: list[int], seed: int) -> list[int]:
    """One intervention per chosen layer, built under a fixed seed per layer: LoReFT's orthogonal R is
    `base @ householder(stored)`, with `base` a random completion torch draws and keeps as a buffer (576 x 576 per
    layer here), so a saved run rebuilds the same `base` from the seed instead of storing it."""
    import torch

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
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + i)
            intervention = cls(embed_dim=hidden, low_rank_dimension=rank, dtype=weight.dtype)
        layers[i].add_module(NAME, intervention.to(weight.device))
        layers[i].register_forward_hook(_hook)
    return chosen


def _rotations(model: Any) -> dict[str, Any]:
    """Each intervention's computed R (hidden x rank), saved beside the parameters to check a reload against."""
    modules = {name: module for name, module in model.named_modules()
               if name.endswith(NAME) and hasattr(module, "rotate_layer")}
    for module in modules.values():
        _keep_orthogonal(module)   # the last optimizer step may have decayed the signs since the last forward
    return {f"{name}.{ROTATION}": module.rotate_layer.weight for name, module in modules.items()}


def apply(model: Any, args: Any, family: Any = None, train_rows: Any = None) -> Any:
    for param in model.parameters():
        param.requires_grad_(False)
    seed = int(getattr(args, "seed", 42))
    chosen = add_interventions(model, args.reft_intervention_type, args.reft_rank, args.reft_layers, seed)
    for name, param in model.named_parameters():
        if _owns(name):
            param.requires_grad_(True)
    settings = {"reft_intervention_type": args.reft_intervention_type, "reft_rank": args.reft_rank,
                "reft_layers": chosen, "reft_seed": seed}
    install_saver(model, "reft", settings, _owns, _rotations)
    install_loader(model, lambda folder: _load_saved(model, folder))
    logger.info(f"reft: {args.reft_intervention_type} of rank {args.reft_rank} on layers {chosen}")
    return model


def load(model: Any, folder: str | Path) -> Any:
    config = read_config(folder)
    add_interventions(model, config["reft_intervention_type"], int(config["reft_rank"]), config["reft_layers"],
                      int(config.get("reft_seed", 42)))
    _load_saved(model, folder)
    return model.eval()


def _load_saved(model: Any, folder: str | Path) -> None:
    saved = load_weights(model, folder, _owns, lambda name: name.endswith(f".{ROTATION}"))
    _check_rotations(model, saved, folder)


def _check_rotations(model: Any, saved: dict[str, Any], folder: str | Path) -> None:
    """A reload whose rebuilt R differs from the saved one (another torch drew another `base`) gets the saved R
    assigned (torch's parametrization re-derives its stored matrix), so answers stay those of training."""
    import torch

    modules = dict(model.named_modules())
    for key, rotation in saved.items():
        layer = modules[key[: -len(ROTATION) - 1]].rotate_layer
        _keep_orthogonal(modules[key[: -len(ROTATION) - 1]])
        if not torch.allclose(layer.weight.detach().cpu().float(), rotation.float(), atol=1e-5):
            with torch.no_grad():
                layer.weight = rotation.to(layer.weight.device, layer.weight.dtype)
            logger.warning(f"{folder}: {key} rebuilt differently here; the saved rotation is assigned")

"""pyproject.toml's dependency floors are honest: the installed versions satisfy them, and no floor is below the
first release that carries what swiftall imports from that package."""
from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"

# package -> (the first release that carries it, what swiftall uses from it, a check on the installed package)
FEATURES = {
    "transformers": ("5.2", "TrainingArguments(train_sampling_strategy=...), a float warmup_steps as a ratio",
                     lambda: "train_sampling_strategy" in _fields("transformers", "TrainingArguments")),
    "trl": ("1.16", "trl.kernels.chunked_logprob with a torch path on CPUs (1.15's is Triton-only), CPO/ORPO/GKD in "
            "trl.experimental",
            lambda: _has("trl.kernels.chunked_logprob", "_use_triton") and _has("trl.experimental.cpo", "CPOTrainer")
            and _has("trl.experimental.orpo", "ORPOTrainer") and _has("trl.experimental.gkd", "GKDTrainer")
            and _has("trl.data_utils", "pack_dataset")),
    "peft": ("0.18", "EVA initialisation (peft.EvaConfig); the oldest peft tested beside transformers 5.2",
             lambda: _has("peft", "EvaConfig") and _has("peft", "initialize_lora_eva_weights")),
    "accelerate": ("1.10.1", "what trl 1.16 requires", lambda: True),
    "datasets": ("4.7", "what trl 1.16 requires", lambda: _has("datasets", "Dataset")),
    "huggingface_hub": ("1.3", "what transformers 5.2 requires", lambda: _has("huggingface_hub", "snapshot_download")),
}


def _has(module: str, name: str) -> bool:
    try:
        return hasattr(importlib.import_module(module), name)
    except ImportError:
        return False


def _fields(module: str, cls: str) -> set:
    import dataclasses

    return {f.name for f in dataclasses.fields(getattr(importlib.import_module(module), cls))}


def _requirements() -> dict[str, Requirement]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    return {r.name.lower().replace("-", "_"): r for r in reqs}


def _floor(req: Requirement) -> Version | None:
    floors = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
    return max(floors) if floors else None


@pytest.mark.parametrize("name", sorted(_requirements()))
def test_installed_versions_meet_the_floors(name):
    req = _requirements()[name]
    try:
        installed = importlib.metadata.version(req.name)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"{req.name} is a dependency but is not installed")
    assert req.specifier.contains(installed, prereleases=True), f"{req.name} {installed} does not meet {req}"


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_no_floor_is_below_what_the_code_uses(name):
    first, used, present = FEATURES[name]
    req = _requirements().get(name)
    assert req is not None, f"{name} is used ({used}) but is no dependency in pyproject.toml"
    floor = _floor(req)
    assert floor is not None and floor >= Version(first), \
        f"{req}: swiftall uses {used}, first in {name} {first}; raise the floor"
    assert present(), f"the installed {name} lacks {used}"

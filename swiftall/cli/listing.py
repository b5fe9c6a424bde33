"""`swiftall model list` and `swiftall dataset list`."""
from __future__ import annotations

from ..utils.errors import ConfigError


def model_command(argv: list[str]) -> None:
    if argv[:1] != ["list"]:
        raise ConfigError("usage: swiftall model list")
    from ..models import list_models

    print(f"{'name':<28} {'family':<10} {'hugging face id':<42} source")
    for meta in sorted(list_models(), key=lambda m: m.name):
        source = f"embedded ({meta.embedded_package})" if meta.embedded_package else "hub"
        print(f"{meta.name:<28} {meta.family:<10} {meta.hf_id or '-':<42} {source}")


def dataset_command(argv: list[str]) -> None:
    if argv[:1] != ["list"]:
        raise ConfigError("usage: swiftall dataset list")
    from ..data.registry import DATASETS

    print(f"{'name':<20} {'where':<34} description")
    for meta in sorted(DATASETS.values(), key=lambda m: m.name):
        where = "bundled" if meta.builtin_file else (meta.hf_id or meta.ms_id or "-")
        print(f"{meta.name:<20} {where:<34} {meta.description}")

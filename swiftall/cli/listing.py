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
    """`swiftall dataset list [--task sft|pt|rlhf|kto|grpo|mllm]`."""
    if argv[:1] != ["list"] or len(argv) not in (1, 3) or (len(argv) == 3 and argv[1] != "--task"):
        raise ConfigError("usage: swiftall dataset list [--task sft|pt|rlhf|kto|grpo|mllm]")
    from ..data.registry import TASKS, list_datasets

    task = argv[2] if len(argv) == 3 else None
    if task is not None and task not in TASKS:
        raise ConfigError(f"--task: {task!r} is not one of {', '.join(TASKS)}")
    print(f"{'name':<24} {'task':<5} {'format':<15} {'where (hugging face id / modelscope id)':<60} description")
    for meta in list_datasets():
        if task and meta.task != task:
            continue
        where = "bundled" if meta.builtin_file else " / ".join(x for x in (meta.path, meta.hf_id, meta.ms_id) if x)
        extra = []
        if meta.subsets:
            extra.append("subsets " + ",".join(meta.subsets))
        if meta.split != ("train",):
            extra.append("split " + ",".join(meta.split))
        note = f" ({'; '.join(extra)})" if extra else ""
        print(f"{meta.name:<24} {meta.task:<5} {meta.format:<15} {where:<60} {meta.description}{note}")

"""`swiftall model list` and `swiftall dataset list`."""
from __future__ import annotations

from ..utils.errors import ConfigError


def model_command(argv: list[str]) -> None:
    if argv[:1] != ["list"]:
        raise ConfigError("usage: swiftall model list")
    from ..models import list_models

    rows = [[meta.name, meta.family, meta.hf_id or "-",
             f"embedded ({meta.embedded_package})" if meta.embedded_package else "hub"]
            for meta in sorted(list_models(), key=lambda m: m.name)]
    print(table(["name", "family", "hugging face id", "source"], rows))


def dataset_command(argv: list[str]) -> None:
    """`swiftall dataset list [--task sft|pt|rlhf|kto|grpo|mllm]`."""
    if argv[:1] != ["list"] or len(argv) not in (1, 3) or (len(argv) == 3 and argv[1] != "--task"):
        raise ConfigError("usage: swiftall dataset list [--task sft|pt|rlhf|kto|grpo|mllm]")
    from ..data.registry import TASKS, list_datasets

    task = argv[2] if len(argv) == 3 else None
    if task is not None and task not in TASKS:
        raise ConfigError(f"--task: {task!r} is not one of {', '.join(TASKS)}")
    rows = []
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
        rows.append([meta.name, meta.task, meta.format, where, f"{meta.description}{note}"])
    print(table(["name", "task", "format", "where (hugging face id / modelscope id)", "description"], rows))


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns as wide as their longest value (the last one left ragged), two spaces apart."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers) - 1)]
    lines = ["  ".join([*(f"{str(v):<{w}}" for v, w in zip(r, widths)), str(r[-1])]) for r in [headers, *rows]]
    return "\n".join(line.rstrip() for line in lines)

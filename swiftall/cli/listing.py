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
    """`swiftall dataset list [--task sft|pt|rlhf|kto|grpo|mllm|eval]`: training datasets, then the registered
    evaluation benchmarks (`--task eval`: the benchmarks only)."""
    from ..data.registry import TASKS

    usage = f"usage: swiftall dataset list [--task {'|'.join((*TASKS, 'eval'))}]"
    if argv[:1] != ["list"] or len(argv) not in (1, 3) or (len(argv) == 3 and argv[1] != "--task"):
        raise ConfigError(usage)
    task = argv[2] if len(argv) == 3 else None
    if task is not None and task not in (*TASKS, "eval"):
        raise ConfigError(f"--task: {task!r} is not one of {', '.join((*TASKS, 'eval'))}")
    if task != "eval":
        print(datasets_table(task))
    if task in (None, "eval"):
        print(("\n" if task is None else "") + benchmarks_table())


def datasets_table(task: str | None) -> str:
    from ..data.registry import list_datasets

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
    return table(["name", "task", "format", "where (hugging face id / modelscope id)", "description"], rows)


def benchmarks_table() -> str:
    """The benchmarks `swiftall eval --eval_dataset NAME` (and `sft --eval_dataset NAME#N`) score."""
    from ..eval.benchmarks import list_benchmarks

    rows = [[b.name, b.eval_type, b.modality, b.split, b.hub_ids, b.description] for b in list_benchmarks()]
    return ("Evaluation benchmarks (swiftall eval --eval_dataset NAME; a local copy: NAME=path):\n"
            + table(["name", "type", "modality", "split", "hub id (hugging face / modelscope)", "description"], rows))


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns as wide as their longest value (the last one left ragged), two spaces apart."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers) - 1)]
    lines = ["  ".join([*(f"{str(v):<{w}}" for v, w in zip(r, widths)), str(r[-1])]) for r in [headers, *rows]]
    return "\n".join(line.rstrip() for line in lines)

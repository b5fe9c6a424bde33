"""The benchmark registry: each benchmark names its hub id(s), subsets and split, turns a hub row into an
EvalItem, and picks its prompt, answer extraction and metrics (by its eval type, overridable per benchmark).

`register_benchmark(Benchmark(...))` adds one (a `--plugin file.py` may call it); names are unique."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..utils.errors import ConfigError
from .items import EVAL_TYPES, EvalItem


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    eval_type: str                                   # qa, math, mcq, caption, vqa, asr, yesno, code, ifeval
    to_item: Callable[[dict[str, Any], int, str], EvalItem]   # (hub row, index, subset) -> item
    hf_id: Optional[str] = None
    ms_id: Optional[str] = None
    subsets: tuple[str, ...] = ()                    # () reads the default config
    split: str = "test"
    fewshot_split: Optional[str] = None              # where --eval_num_fewshot examples come from
    metrics: tuple[str, ...] = ()                    # () uses the eval type's metrics
    mc_style: str = "question"                       # question (Question:/Answer:) or completion (hellaswag)
    modality: str = "text"                           # text, image, audio
    lm_eval_task: Optional[str] = None               # the lm-evaluation-harness task with the same data
    evalscope_name: Optional[str] = None             # the EvalScope dataset name
    needs_opt_in: Optional[str] = None               # a dataset-args key that must be true (code execution)
    prompt_suffix: str = ""                          # appended to each question in generation mode
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.eval_type not in EVAL_TYPES:
            raise ConfigError(f"benchmark '{self.name}': eval_type must be one of {', '.join(EVAL_TYPES)}")

    @property
    def hub_ids(self) -> str:
        return " / ".join(x for x in (self.hf_id, self.ms_id) if x) or "-"


BENCHMARKS: dict[str, Benchmark] = {}


def register_benchmark(benchmark: Benchmark) -> Benchmark:
    old = BENCHMARKS.get(benchmark.name)
    if old is not None and old != benchmark:
        raise ConfigError(f"benchmark '{benchmark.name}' is already registered; pick another name")
    BENCHMARKS[benchmark.name] = benchmark
    return benchmark


def _ensure_catalog() -> None:
    from . import catalog  # noqa: F401  (registers the built-in benchmarks on first use)


def get_benchmark(name: str) -> Optional[Benchmark]:
    _ensure_catalog()
    key = name.strip().lower().replace("-", "_")
    return BENCHMARKS.get(name) or BENCHMARKS.get(key)


def list_benchmarks() -> list[Benchmark]:
    _ensure_catalog()
    return sorted(BENCHMARKS.values(), key=lambda b: b.name)


def did_you_mean(name: str) -> str:
    """' (did you mean gsm8k?)' for a near miss among benchmark names, else ''."""
    _ensure_catalog()
    close = difflib.get_close_matches(name.lower().replace("-", "_"), list(BENCHMARKS), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def format_benchmarks() -> str:
    """The table `swiftall eval --list` prints."""
    lines = [f"{'name':<15} {'type':<8} {'split':<11} {'hub id (hugging face / modelscope)':<44} description"]
    for b in list_benchmarks():
        lines.append(f"{b.name:<15} {b.eval_type:<8} {b.split:<11} {b.hub_ids:<44} {b.description}")
    lines.append("")
    lines.append("Local files: --eval_dataset data.jsonl (conversations, query/response, or question/choices/answer); "
                 "a local copy of a benchmark: --eval_dataset NAME=path")
    return "\n".join(lines)

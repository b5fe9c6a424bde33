"""Evaluation: benchmark registry, local data, prompts and answer extraction, metrics with 95% intervals, a
runner over any Engine, reports and run-to-run diffs; lm-evaluation-harness and EvalScope adapters.

`swiftall.pipelines.eval.eval_main(config)` wires it together; this package imports no model code at import."""
from .benchmarks import Benchmark, format_benchmarks, get_benchmark, list_benchmarks, register_benchmark
from .items import EvalItem

__all__ = ["Benchmark", "EvalItem", "format_benchmarks", "get_benchmark", "list_benchmarks", "register_benchmark",
           "eval_diff"]


def __getattr__(name: str):
    if name == "eval_diff":
        from .diff import eval_diff

        return eval_diff
    raise AttributeError(name)

"""logging.jsonl's memory_peak_rss_gib is the run's own peak, whoever started the run."""
from __future__ import annotations

import resource
import subprocess
import sys


def test_a_run_started_from_a_large_process_reports_its_own_peak():
    ballast = bytearray(3072 * 2**20)  # this process's peak is now at least 3 GiB (pages touched below)
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >= 3072 * 2**10
    child = subprocess.run([sys.executable, "-c", "from swiftall.train.callbacks import peak_rss_kib; "
                            "print(peak_rss_kib())"], capture_output=True, text=True, timeout=300, check=True)
    del ballast
    own = int(child.stdout.split()[-1])
    # the child only imports torch and transformers (0.8-1.1 GiB here); the parent's 3 GiB peak must not show
    assert 10 * 2**10 < own < 2048 * 2**10, f"child reported {own} KiB: the parent's peak, not its own"


def test_bench_plan_measures_its_run_not_the_process_that_started_it():
    """The plan's accuracy test runs bench_plan's measurements from pytest, whose peak reaches several GiB: a
    measurement that read ru_maxrss saw pytest's peak for every setting (CI: 5.06 GiB for two different runs)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "bench_plan", Path(__file__).resolve().parent.parent / "benchmarks" / "bench_plan.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    ballast = bytearray(3072 * 2**20)
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])
    measured = bench.baseline()  # imports torch, transformers, peft, trl, datasets and loads the embedded model
    del ballast
    assert 0.3 < measured["import_gib"] <= measured["loaded_fp32_gib"] < 2.5, measured

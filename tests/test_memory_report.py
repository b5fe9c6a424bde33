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

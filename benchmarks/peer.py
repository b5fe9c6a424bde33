"""Running another toolkit's command side by side: its wall time and the peak resident memory of its largest process.

ms-swift's `swift sft|rlhf` re-runs itself as a child python process; the peak is read from the kernel's
RUSAGE_CHILDREN (the largest descendant waited for) in a small wrapper process started for the purpose, so the
figure is not the benchmark's own peak (exec carries ru_maxrss over from the process that starts a child).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

WRAPPER = r"""
import json, resource, subprocess, sys
proc = subprocess.run(sys.argv[1:])
print("PEER_PEAK " + json.dumps({"returncode": proc.returncode,
                                 "peak_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}), flush=True)
"""


def openmp_env() -> dict:
    """The OpenMP wait policy swiftall's CLI would choose right now (swiftall/utils/env.choose_openmp_waits: passive
    waits while other work keeps the CPUs busy, libgomp's short spin on an idle machine), for the peer's run too."""
    from swiftall.utils.env import openmp_wait_policy

    return {"OMP_WAIT_POLICY": "PASSIVE"} if openmp_wait_policy() == "passive" else {}


def run_peer(cmd: list[str], env: dict | None = None, log_path: str | None = None) -> dict:
    """Run `cmd`; returns {"returncode", "peak_gib", "wall_s", "text"} (stdout and stderr together)."""
    started = time.time()
    out = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    wall = time.time() - started
    text = out.stdout + out.stderr
    if log_path:
        with open(log_path, "w") as handle:
            handle.write(text)
    marker = [line for line in out.stdout.splitlines() if line.startswith("PEER_PEAK ")]
    info = json.loads(marker[-1].split(" ", 1)[1]) if marker else {"returncode": out.returncode, "peak_kib": 0}
    return {"returncode": info["returncode"], "peak_gib": info["peak_kib"] / 2**20, "wall_s": wall, "text": text}

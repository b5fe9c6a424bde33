"""The OpenMP wait policy every swiftall command chooses before torch loads OpenMP (utils/env.choose_openmp_waits)."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from swiftall.utils import env


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_policy_the_user_set_is_kept(clean_env):
    import os

    clean_env.setenv("GOMP_SPINCOUNT", "1000")
    clean_env.setattr(env, "other_busy_cpus", lambda window: 5.0)
    assert env.choose_openmp_waits() == "user" and "OMP_WAIT_POLICY" not in os.environ
    clean_env.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert env.choose_openmp_waits() == "user" and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_busy_or_shared_machines_get_passive_waits_and_idle_ones_keep_the_spin(clean_env):
    import os

    clean_env.setattr(env, "other_busy_cpus", lambda window: 0.1)
    assert env.choose_openmp_waits() == "spin" and "OMP_WAIT_POLICY" not in os.environ
    clean_env.setattr(env, "other_busy_cpus", lambda window: 1.2)
    assert env.choose_openmp_waits() == "passive" and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    clean_env.delenv("OMP_WAIT_POLICY")
    clean_env.setattr(env, "other_busy_cpus", lambda window: 0.0)
    clean_env.setenv("LOCAL_WORLD_SIZE", "2")  # torchrun's processes on one machine share its cores
    assert env.choose_openmp_waits() == "passive"


def test_busy_cpus_counts_other_processes_and_not_this_one():
    stop = time.time() + 0.6
    burner = threading.Thread(target=lambda: [None for _ in iter(lambda: time.time() > stop, True)])
    burner.start()  # this process keeps a CPU busy: not counted
    own = env.other_busy_cpus(0.3)
    burner.join()
    spin = "import time\nend = time.time() + 2\nwhile time.time() < end: pass"
    other = subprocess.Popen([sys.executable, "-c", spin])
    try:
        time.sleep(0.3)
        busy = env.other_busy_cpus(0.5)
    finally:
        other.kill()
        other.wait()
    assert own < 0.5, own
    assert busy > 0.7, busy

"""The one place where swiftall reads environment variables."""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Where converted models, downloads and encoded data live (``SWIFTALL_CACHE`` overrides)."""
    explicit = os.environ.get("SWIFTALL_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "swiftall"


def hf_offline() -> bool:
    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("SWIFTALL_OFFLINE"))


def hf_cache_dir() -> str | None:
    return os.environ.get("HF_HUB_CACHE") or None


def modelscope_cache_dir() -> str | None:
    return os.environ.get("MODELSCOPE_CACHE") or None


def local_world_size() -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)


def choose_openmp_waits(window_s: float = 0.05) -> str:
    """How OpenMP's waiting threads behave, chosen before torch loads OpenMP unless the user set OMP_WAIT_POLICY or
    GOMP_SPINCOUNT ("user"). While other processes keep more than half a CPU busy (sampled over `window_s` from
    /proc/stat, this process excluded), or when several training processes share the machine (LOCAL_WORLD_SIZE > 1),
    threads sleep as they wait (OMP_WAIT_POLICY=PASSIVE, "passive"): spinning threads take the cores the working ones
    need (LoRA SFT steps 8.7x slower on 2 shared cores at load 12; a bounded spin of 20,000 still 1.5x slower at load
    4.5). On an otherwise idle machine libgomp's own default stays (a short spin, then sleep; "spin"): 1.13-1.28x
    faster LoRA SFT steps there than PASSIVE (benchmarks/bench_sft.py)."""
    choice = openmp_wait_policy(window_s)
    if choice == "passive":
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return choice


def openmp_wait_policy(window_s: float = 0.05) -> str:
    """What choose_openmp_waits would choose now ("user", "passive" or "spin"), changing nothing."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return "user"
    if local_world_size() > 1 or other_busy_cpus(window_s) > 0.5:
        return "passive"
    return "spin"


def other_busy_cpus(window_s: float) -> float:
    """CPUs kept busy by other processes over the next `window_s` seconds (this one sleeps meanwhile)."""
    import time

    def busy() -> tuple[float, float]:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
        return sum(fields) - idle, sum(fields)

    try:
        busy0, total0 = busy()
        own0 = time.process_time()
        time.sleep(window_s)
        busy1, total1 = busy()
    except (OSError, ValueError, IndexError):  # not Linux: the 1-minute load average instead
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    ticks = total1 - total0
    if ticks <= 0:
        return 0.0
    cpus = os.cpu_count() or 1
    own = (time.process_time() - own0) / window_s  # CPUs this process used meanwhile (its other threads)
    return max(0.0, (busy1 - busy0) / ticks * cpus - own)


def usable_cpus() -> int:
    """CPUs this process may run on (respects taskset/cgroups affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def no_color() -> bool:
    return "NO_COLOR" in os.environ


def verbose() -> bool:
    """SWIFTALL_VERBOSE=1: show library warnings and notes in the Python API too (the CLI has --verbose)."""
    return _truthy(os.environ.get("SWIFTALL_VERBOSE"))


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def quiet_gradio(temp_dir: str) -> None:
    """Set before gradio is imported (the web UI): no analytics or version check, uploads kept under temp_dir."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["GRADIO_TEMP_DIR"] = temp_dir


def select_gpus(gpus: str) -> None:
    """`--gpus 0,1`: the CUDA devices this process may use (set before CUDA is first initialised)."""
    os.environ["CUDA_VISIBLE_DEVICES"] = str(gpus).replace(" ", "")


LAUNCH_VARIABLES = ("NPROC_PER_NODE", "NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT")


def launch_request() -> dict[str, str]:
    """ms-swift's launch variables that are set (NPROC_PER_NODE=2 swiftall sft ... re-launches under torchrun)."""
    return {name: os.environ[name] for name in LAUNCH_VARIABLES if os.environ.get(name, "").strip()}


def launch_environment(processes: int) -> dict[str, str]:
    """The environment of a torchrun launch of `processes` processes on this machine: OMP_NUM_THREADS, unless set,
    divides this machine's usable CPUs among them (torchrun would set 1 and print a warning saying so)."""
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, usable_cpus() // max(1, processes)))
    return {**os.environ, "OMP_NUM_THREADS": threads}


def launched_world() -> tuple[int, int] | None:
    """(rank, world size) when this process was started by torchrun, accelerate launch or deepspeed, else None."""
    if "LOCAL_RANK" not in os.environ and "WORLD_SIZE" not in os.environ:
        return None
    rank = os.environ.get("RANK") or os.environ.get("LOCAL_RANK") or "0"
    return int(rank), int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    """True outside a multi-process run and on its global rank 0: the process that writes logs, plots and args.json."""
    world = launched_world()
    return world is None or world[0] == 0

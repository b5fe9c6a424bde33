"""`swiftall doctor [--dist] [--output_dir DIR]`: what a run needs, checked before it starts.

--dist adds the distributed preflight: the rendezvous address and port (free on the master, reachable from the other
nodes), the output folder writable, and a 2-process gloo all-reduce on this machine (works, and its bandwidth).
Run it on every node and compare the printed package versions: they must be the same everywhere."""
from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path
from typing import Optional

from ..utils import env
from ..utils.errors import ConfigError
from .launch import DEFAULT_PORT

PACKAGES = ("swiftall", "torch", "transformers", "accelerate", "peft", "trl", "datasets", "deepspeed")
USAGE = "usage: swiftall doctor [--dist] [--output_dir DIR]"


def doctor_command(argv: list[str]) -> None:
    dist, output_dir = _parse(argv)
    checks = [("packages", _versions())]
    if dist:
        variables = env.launch_request()
        checks.append(("rendezvous", _port_check(variables)))
        checks.append(("output folder", _writable(Path(output_dir or "output"))))
        checks.append(("gloo all-reduce", _allreduce()))
    failed = [name for name, (ok, _) in checks if not ok]
    for name, (ok, text) in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {text}")
    if failed:
        raise ConfigError(f"{', '.join(failed)} failed (see above)")


def _parse(argv: list[str]) -> tuple[bool, Optional[str]]:
    dist, output_dir, rest = False, None, list(argv)
    while rest:
        flag = rest.pop(0)
        if flag == "--dist":
            dist = True
        elif flag == "--output_dir" and rest:
            output_dir = rest.pop(0)
        elif flag.startswith("--output_dir="):
            output_dir = flag.split("=", 1)[1]
        else:
            raise ConfigError(f"unknown argument {flag!r}; {USAGE}")
    return dist, output_dir


def _versions() -> tuple[bool, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} -")
    return True, ", ".join(found) + " (must match on every node)"


def _port_check(variables: dict[str, str]) -> tuple[bool, str]:
    addr = variables.get("MASTER_ADDR", "127.0.0.1")
    port = int(variables.get("MASTER_PORT", DEFAULT_PORT))
    if variables.get("NODE_RANK", "0") != "0":  # another node: the master must resolve (a listener comes later)
        try:
            socket.getaddrinfo(addr, port)
        except OSError as exc:
            return False, f"MASTER_ADDR {addr} does not resolve ({exc}); set it to node 0's address"
        return True, f"MASTER_ADDR {addr} resolves; node 0 must be started with the same MASTER_PORT {port}"
    with socket.socket() as sock:
        try:
            sock.bind(("", port))
        except OSError as exc:
            return False, f"port {port} cannot be opened here ({exc.strerror}); pick another --master_port"
    return True, f"port {port} is free on this (master) node; other nodes reach it at {addr}:{port}"


def _writable(folder: Path) -> tuple[bool, str]:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
            pass
    except OSError as exc:
        return False, f"{folder} is not writable ({exc.strerror}); every node needs the same writable --output_dir"
    return True, f"{folder.resolve()} is writable (on several nodes it must be shared storage)"


def _allreduce() -> tuple[bool, str]:
    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    queue = mp.get_context("spawn").SimpleQueue()
    try:
        mp.spawn(_allreduce_worker, args=(port, queue), nprocs=2, join=True)
    except Exception as exc:  # a failed worker: its error is the finding
        return False, f"2 local processes could not all-reduce over gloo: {exc}"
    seconds, mib = queue.get()
    return True, f"2 local processes, {mib} MiB in {seconds * 1000:.1f} ms ({mib / seconds:.0f} MiB/s)"


def _allreduce_worker(rank: int, port: int, queue) -> None:
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    data = torch.ones(4 * 1024 * 1024)  # 16 MiB of fp32
    dist.all_reduce(data)
    started = time.perf_counter()
    for _ in range(3):
        dist.all_reduce(data)
    seconds = (time.perf_counter() - started) / 3
    if rank == 0:
        if float(data[0]) != 2 ** 4:
            raise RuntimeError(f"all-reduce returned {float(data[0])}, expected 16")
        queue.put((seconds, 16))
    dist.destroy_process_group()

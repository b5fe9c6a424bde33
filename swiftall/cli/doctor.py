"""`swiftall doctor [--dist] [--output_dir DIR]`: what a run needs, checked before it starts.

--dist adds the distributed preflight: the rendezvous address and port (free on the master, reachable from the other
nodes), the output folder writable, and a 2-process gloo all-reduce on this machine (works, and its bandwidth).

With NNODES > 1 (the variables or --nnodes/--node_rank/--master_addr/--master_port of a multi-node run), run it on
every node as the run would be started: the nodes meet at the master over gloo, one process each, and every node
prints the checks across all of them: the same package versions everywhere (a node that differs is named, with
its versions), one shared output folder (node 0 writes a marker there; a node that cannot read it is named), each
node's free memory, and the all-reduce between the nodes, with its bandwidth. A node that does not arrive within
--timeout seconds (default 60) is reported by the others."""
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
USAGE = ("usage: swiftall doctor [--dist] [--output_dir DIR] [--nnodes N --node_rank R --master_addr A "
         "--master_port P] [--timeout S]")
NODE_FLAGS = {"--nnodes": "NNODES", "--node_rank": "NODE_RANK", "--master_addr": "MASTER_ADDR",
              "--master_port": "MASTER_PORT"}


def doctor_command(argv: list[str]) -> None:
    dist, output_dir, variables, timeout = _parse(argv)
    checks = [("packages", _versions())]
    if dist:
        variables = {**env.launch_request(), **variables}
        folder = Path(output_dir or "output")
        checks.append(("rendezvous", _port_check(variables)))
        checks.append(("output folder", _writable(folder)))
        nodes = int(variables.get("NNODES", "1"))
        if nodes > 1 and checks[-2][1][0] and checks[-1][1][0]:  # this node's own checks passed: meet the others
            checks += _across_nodes(variables, nodes, folder, timeout)
        else:
            checks.append(("gloo all-reduce", _allreduce()))
    failed = [name for name, (ok, _) in checks if not ok]
    for name, (ok, text) in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {text}")
    if failed:
        raise ConfigError(f"{', '.join(failed)} failed (see above)")


def _parse(argv: list[str]) -> tuple[bool, Optional[str], dict[str, str], float]:
    dist, output_dir, variables, timeout, rest = False, None, {}, 60.0, list(argv)
    while rest:
        flag = rest.pop(0)
        name, eq, value = flag.partition("=")
        if flag == "--dist":
            dist = True
            continue
        if name not in ("--output_dir", "--timeout", *NODE_FLAGS):
            raise ConfigError(f"unknown argument {flag!r}; {USAGE}")
        if not eq:
            if not rest:
                raise ConfigError(f"{name} needs a value; {USAGE}")
            value = rest.pop(0)
        if name == "--output_dir":
            output_dir = value
        elif name == "--timeout":
            try:
                timeout = float(value)
            except ValueError:
                raise ConfigError(f"--timeout {value!r}: a number of seconds; {USAGE}") from None
        else:
            variables[NODE_FLAGS[name]] = value
    for key in ("NNODES", "NODE_RANK", "MASTER_PORT"):
        if key in variables and not variables[key].isdigit():
            raise ConfigError(f"{key.lower()} {variables[key]!r}: a whole number; {USAGE}")
    return dist, output_dir, variables, timeout


def _node_facts(folder: Path) -> dict:
    """What this node tells the others: its name, versions, output folder and free memory."""
    import psutil
    import torch

    facts = {"host": socket.gethostname(), "versions": _package_versions(), "folder": str(folder.resolve()),
             "ram_free_gib": psutil.virtual_memory().available / 2**30, "gpus": []}
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            facts["gpus"].append((free / 2**30, total / 2**30))
    return facts


def _across_nodes(variables: dict[str, str], nodes: int, folder: Path, timeout: float) -> list:
    """Meet the other nodes at the master (gloo, one process per node) and check them all from every node."""
    import datetime
    import secrets

    import torch.distributed as dist

    rank = int(variables.get("NODE_RANK", "0"))
    addr, port = variables.get("MASTER_ADDR", "127.0.0.1"), int(variables.get("MASTER_PORT", DEFAULT_PORT))
    try:
        dist.init_process_group("gloo", init_method=f"tcp://{addr}:{port}", rank=rank, world_size=nodes,
                                timeout=datetime.timedelta(seconds=timeout))
    except Exception as exc:  # noqa: BLE001 - the failure to meet is the finding
        who = "the other nodes did" if rank == 0 else f"the master {addr}:{port} did"
        return [("nodes meet", (False, f"node {rank} of {nodes}: {who} not answer within {timeout:.0f} s "
                                       f"({type(exc).__name__}); start `swiftall doctor --dist` on every node with "
                                       "the same NNODES, MASTER_ADDR and MASTER_PORT"))]
    try:
        marker = [f".swiftall-doctor-{secrets.token_hex(6)}" if rank == 0 else None]
        dist.broadcast_object_list(marker, src=0)
        if rank == 0:
            (folder / marker[0]).write_text(marker[0])
        dist.barrier()
        facts = _node_facts(folder)
        path = folder / marker[0]
        facts["sees_marker"] = path.is_file() and path.read_text() == marker[0]
        gathered: list = [None] * nodes
        dist.all_gather_object(gathered, facts)
        seconds, value = _timed_allreduce()
        reduced = value == float(nodes) ** 4
        dist.barrier()
        if rank == 0:
            path.unlink(missing_ok=True)
    finally:
        dist.destroy_process_group()
    return [("nodes meet", (True, f"{nodes} nodes: " + ", ".join(f"node {i} {f['host']}" for i, f in
                                                                enumerate(gathered)))),
            ("same packages", _same_versions(gathered)),
            ("shared output folder", _shared_folder(gathered)),
            ("memory", (True, "; ".join(_memory_line(i, f) for i, f in enumerate(gathered)))),
            ("gloo all-reduce", (reduced, f"{nodes} nodes, 16 MiB in {seconds * 1000:.1f} ms "
                                          f"({16 / seconds:.0f} MiB/s)" if reduced else
                                 f"all-reduce across {nodes} nodes returned {value}"))]


def _same_versions(gathered: list) -> tuple[bool, str]:
    reference = gathered[0]["versions"]
    differ = []
    for i, facts in enumerate(gathered[1:], start=1):
        diff = [f"{n} {facts['versions'][n]} (node 0: {reference[n]})" for n in PACKAGES
                if facts["versions"].get(n) != reference.get(n)]
        if diff:
            differ.append(f"node {i} ({facts['host']}): " + ", ".join(diff))
    if differ:
        return False, "; ".join(differ) + ": install the same versions on every node"
    return True, f"the same on all {len(gathered)} nodes"


def _shared_folder(gathered: list) -> tuple[bool, str]:
    blind = [f"node {i} ({f['host']}, {f['folder']})" for i, f in enumerate(gathered) if not f["sees_marker"]]
    if blind:
        return False, (f"{', '.join(blind)} cannot read what node 0 wrote in {gathered[0]['folder']}: --output_dir "
                       "must be one folder that every node shares (a network file system), at a path each node can use")
    return True, f"{gathered[0]['folder']} is the same folder on every node"


def _memory_line(index: int, facts: dict) -> str:
    gpus = ", ".join(f"GPU{i} {free:.1f}/{total:.1f} GiB free" for i, (free, total) in enumerate(facts["gpus"]))
    return f"node {index} {facts['ram_free_gib']:.1f} GiB RAM free" + (f", {gpus}" if gpus else "")


def _package_versions() -> dict[str, str]:
    """The installed version of each package a run depends on ('-' where missing)."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "-"
    return versions


def _versions() -> tuple[bool, str]:
    found = ", ".join(f"{name} {ver}" for name, ver in _package_versions().items())
    return True, found + " (must match on every node)"


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


def _timed_allreduce() -> tuple[float, float]:
    """Seconds per all-reduce of 16 MiB of fp32 ones in the current process group (after one warm-up; three timed),
    and the value each element ends with (world size to the 4th power)."""
    import torch
    import torch.distributed as dist

    data = torch.ones(4 * 1024 * 1024)
    dist.all_reduce(data)
    started = time.perf_counter()
    for _ in range(3):
        dist.all_reduce(data)
    return (time.perf_counter() - started) / 3, float(data[0])


def _allreduce_worker(rank: int, port: int, queue) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    seconds, value = _timed_allreduce()
    if rank == 0:
        if value != 2 ** 4:
            raise RuntimeError(f"all-reduce returned {value}, expected 16")
        queue.put((seconds, 16))
    dist.destroy_process_group()

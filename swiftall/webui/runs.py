"""Runs started from the page: `swiftall <command> ...` processes that outlive the page and the web UI itself.

Each run is an argument list (never a shell) started by `supervise.py` in its own session and process group, so
closing the browser, refreshing the page or restarting the web UI leaves it running. The UI writes one small
record per run under `<runs_dir>/.webui/runs/<id>.json` (argv, pid, output folder, exit code, log file); the
run's own folder (args.json, logging.jsonl, checkpoints) is read by `runlist.py`. Stop sends SIGINT to the whole
group, then SIGTERM, then SIGKILL, waiting between each, and reports the memory the group held.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..utils.errors import ConfigError
from .supervise import update

STATE = ".webui"
SAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")
STOP_WAITS = ((signal.SIGINT, 15.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0))


@dataclass
class StopResult:
    signals: list[str]       # the signals that were sent, in order
    gone: bool               # no process of the group is left
    freed_mb: float          # resident memory the group held just before the stop

    def message(self) -> str:
        how = " -> ".join(self.signals) or "nothing to send"
        if self.gone:
            return f"stopped ({how}); every process of the run is gone, {self.freed_mb:.0f} MB of memory freed"
        return f"sent {how} but processes of the run are still alive"


def swiftall_argv(command: str, args: list[str]) -> list[str]:
    """The command line of a swiftall command run by this Python (`python -m swiftall ...`)."""
    return [sys.executable, "-m", "swiftall", command, *[str(a) for a in args]]


class RunManager:
    """Start, list and stop runs whose records live under `<root>/.webui/runs`."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self.records = self.root / STATE / "runs"
        self._children: dict[str, subprocess.Popen] = {}

    # ---- records ------------------------------------------------------------------------------
    def record_path(self, run_id: str) -> Path:
        return self.records / f"{run_id}.json"

    def read(self, run_id: str) -> Optional[dict[str, Any]]:
        path = self.record_path(run_id)
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def all_records(self) -> list[dict[str, Any]]:
        if not self.records.is_dir():
            return []
        found = [self.read(p.stem) for p in sorted(self.records.glob("*.json"))]
        return [r for r in found if r]

    def new_id(self, stem: str) -> str:
        base = SAFE_ID.sub("-", stem).strip("-.") or "run"
        run_id, n = base, 1
        while self.record_path(run_id).exists():
            n += 1
            run_id = f"{base}-{n}"
        return run_id

    # ---- start --------------------------------------------------------------------------------
    def start(self, command: str, args: list[str], output_dir: Optional[str | Path] = None,
              run_id: Optional[str] = None, extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        """Start `swiftall <command> *args` detached; returns its record. `args` is passed as is: each item is one
        argument, whatever characters it holds."""
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise TypeError("a run's arguments are a list of strings")
        return self.start_argv(swiftall_argv(command, args), command, args, output_dir, run_id, extra)

    def start_argv(self, argv: list[str], command: str, args: list[str], output_dir: Optional[str | Path] = None,
                   run_id: Optional[str] = None, extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        """Start any argument list detached under the supervisor (start() builds swiftall's)."""
        self.records.mkdir(parents=True, exist_ok=True)
        run_id = run_id or self.new_id(Path(output_dir).name if output_dir else f"{command}-{time.strftime('%H%M%S')}")
        record = {"id": run_id, "command": command, "args": args, "argv": list(argv),
                  "output_dir": str(Path(output_dir).resolve()) if output_dir else None, "cwd": str(Path.cwd()),
                  "log": str(self.records / f"{run_id}.log"), "started": time.time(), **(extra or {})}
        path = self.record_path(run_id)
        path.write_text(json.dumps(record, indent=2))
        Path(record["log"]).touch()
        proc = subprocess.Popen([sys.executable, "-m", "swiftall.webui.supervise", str(path)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)
        record.update(pid=proc.pid, create_time=_create_time(proc.pid))
        update(path, pid=proc.pid, create_time=record["create_time"])
        self._children[run_id] = proc
        _SNAPSHOT["at"] = 0.0  # the next look at the process table sees the new group
        threading.Thread(target=proc.wait, daemon=True).start()  # reap the supervisor when it ends
        return record

    def resume(self, run_id: str) -> dict[str, Any]:
        """Start a stopped training run again from its latest checkpoint, in the same folder."""
        record = self.read(run_id)
        if record is None:
            raise ConfigError(f"no run '{run_id}' was started from this page (runs from the command line: use "
                              f"swiftall sft --resume_from_checkpoint DIR)")
        if self.alive(record):
            raise ConfigError(f"run '{run_id}' is still running")
        folder = Path(record.get("output_dir") or "")
        checkpoints = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1])
                             if p.name.split("-")[-1].isdigit() else -1)
        if not checkpoints:
            raise ConfigError(f"run '{run_id}' has no checkpoint-N folder in {folder} to resume from")
        args = _without_flag(record["args"], "--resume_from_checkpoint")
        args += ["--resume_from_checkpoint", str(checkpoints[-1])]
        self.record_path(run_id).unlink()
        return self.start(record["command"], args, record.get("output_dir"), run_id=run_id,
                          extra={"resumed_from": str(checkpoints[-1])})

    # ---- state --------------------------------------------------------------------------------
    def alive(self, record: dict[str, Any]) -> bool:
        """Whether the run's process group still has a live (not zombie) process."""
        child = self._children.get(record["id"])
        if child is not None:
            child.poll()  # reap our own supervisor as soon as it ends
        return bool(record.get("pid")) and _group_exists(record["pid"])

    def status(self, record: dict[str, Any]) -> str:
        if self.alive(record):
            return "stopping" if record.get("stop_requested") else "running"
        code = record.get("returncode")
        if record.get("stop_requested"):
            return "stopped"
        if code == 0:
            return "finished"
        if code is None:
            return "died"
        return f"failed (exit {code})"

    def memory_mb(self, record: dict[str, Any]) -> float:
        return _group_rss(record["pid"]) / 2**20 if record.get("pid") and self.alive(record) else 0.0

    # ---- stop ---------------------------------------------------------------------------------
    def stop(self, run_id: str, waits: tuple = STOP_WAITS) -> StopResult:
        record = self.read(run_id)
        if record is None or not record.get("pid"):
            raise ConfigError(f"no run '{run_id}' to stop")
        if not self.alive(record):
            return StopResult([], True, 0.0)
        update(self.record_path(run_id), stop_requested=time.time())
        pgid, before, sent = record["pid"], _group_rss(record["pid"]) / 2**20, []
        for sig, wait in waits:
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            sent.append(sig.name)
            if _wait_gone(pgid, wait, self._children.get(run_id)):
                break
        return StopResult(sent, not _group_exists(pgid), before)


def _without_flag(args: list[str], flag: str) -> list[str]:
    out, skip = [], False
    for item in args:
        if skip and not item.startswith("--"):
            continue
        skip = item == flag
        if not skip:
            out.append(item)
    return out


def _create_time(pid: int) -> Optional[float]:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


_SNAPSHOT: dict[str, Any] = {"at": 0.0, "groups": {}}


def _group_members(pgid: int) -> list[Any]:
    """Live (not zombie) processes of a process group, from one process-table snapshot per half second (the page
    asks for every run's state every few seconds)."""
    import psutil

    if time.monotonic() - _SNAPSHOT["at"] > 0.5:
        groups: dict[int, list[Any]] = {}
        for proc in psutil.process_iter(["pid", "status"]):
            try:
                if proc.info["status"] != psutil.STATUS_ZOMBIE:
                    groups.setdefault(os.getpgid(proc.pid), []).append(proc)
            except (ProcessLookupError, PermissionError, psutil.Error):
                continue
        _SNAPSHOT.update(at=time.monotonic(), groups=groups)
    return [p for p in _SNAPSHOT["groups"].get(pgid, []) if _live(p)]


def _live(proc: Any) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _group_exists(pgid: int) -> bool:
    return bool(_group_members(pgid))


def _group_rss(pgid: int) -> int:
    total = 0
    for proc in _group_members(pgid):
        try:
            total += proc.memory_info().rss
        except Exception:  # the process ended between listing and reading
            continue
    return total


def _wait_gone(pgid: int, seconds: float, child: Optional[subprocess.Popen]) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if child is not None:
            child.poll()
        _SNAPSHOT["at"] = 0.0
        if not _group_exists(pgid):
            return True
        time.sleep(0.2)
    return False

"""What the Runs tab shows, read from the run folders themselves (args.json, logging.jsonl, checkpoint-N) and the
page's own run records, so a refreshed or reopened page, or a restarted web UI, loses nothing."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .runs import STATE, RunManager

FINAL_FILES = ("adapter_config.json", "config.json")
RECENT_S = 120  # a command-line run whose log changed this recently counts as running
COLUMNS = ["run", "command", "status", "step", "loss", "checkpoints", "memory MB", "started", "folder"]


@dataclass
class RunView:
    id: str
    command: str
    status: str
    folder: Optional[Path]
    record: Optional[dict[str, Any]] = None
    log: list[dict[str, Any]] = field(default_factory=list)
    memory_mb: float = 0.0

    @property
    def last_loss(self) -> Optional[float]:
        losses = [r["loss"] for r in self.log if isinstance(r.get("loss"), (int, float))]
        return losses[-1] if losses else None

    @property
    def step(self) -> Optional[int]:
        steps = [r["step"] for r in self.log if isinstance(r.get("step"), int)]
        return steps[-1] if steps else None

    @property
    def checkpoints(self) -> list[str]:
        if not self.folder or not self.folder.is_dir():
            return []
        return sorted((p.name for p in self.folder.glob("checkpoint-*") if p.is_dir()),
                      key=lambda n: int(n.rsplit("-", 1)[-1]) if n.rsplit("-", 1)[-1].isdigit() else -1)

    def row(self) -> list[Any]:
        started = (self.record or {}).get("started") or _mtime(self.folder)
        loss = self.last_loss
        return [self.id, self.command, self.status, self.step if self.step is not None else "",
                f"{loss:.4f}" if loss is not None else "", len(self.checkpoints),
                f"{self.memory_mb:.0f}" if self.memory_mb else "",
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "",
                str(self.folder or "")]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a line being written right now (not yet complete) is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _mtime(path: Optional[Path]) -> Optional[float]:
    try:
        return path.stat().st_mtime if path else None
    except OSError:
        return None


def _run_folders(root: Path) -> list[Path]:
    """Folders under root (two levels deep) that look like runs: args.json, logging.jsonl or checkpoints."""
    found = []
    if not root.is_dir():
        return found
    for depth in ("*", "*/*"):
        for folder in root.glob(depth):
            if STATE in folder.parts or not folder.is_dir() or folder.name.startswith("checkpoint-"):
                continue
            if (folder / "args.json").is_file() or (folder / "logging.jsonl").is_file():
                found.append(folder.resolve())
    return found


def _command_of(folder: Path) -> str:
    try:
        return json.loads((folder / "args.json").read_text()).get("command", "?")
    except (OSError, json.JSONDecodeError):
        return "?"


def _folder_status(folder: Path) -> str:
    if any((folder / name).is_file() for name in FINAL_FILES):
        return "finished"
    changed = _mtime(folder / "logging.jsonl")
    if changed and time.time() - changed < RECENT_S:
        return "running (command line)"
    return "incomplete"


def list_runs(manager: RunManager) -> list[RunView]:
    """Every run: the page's records first (newest first), then run folders started from the command line."""
    views, seen = [], set()
    for record in sorted(manager.all_records(), key=lambda r: -(r.get("started") or 0)):
        folder = Path(record["output_dir"]) if record.get("output_dir") else None
        status = manager.status(record)
        if status == "finished" and folder is not None and record["command"] in ("sft", "rlhf", "dpo") \
                and not any((folder / n).is_file() for n in FINAL_FILES):
            status = "finished (no final weights)"
        views.append(RunView(record["id"], record["command"], status, folder, record,
                             read_jsonl(folder / "logging.jsonl") if folder else [], manager.memory_mb(record)))
        if folder is not None:
            seen.add(folder.resolve())
    for folder in sorted(_run_folders(manager.root), key=lambda p: -(_mtime(p) or 0)):
        if folder in seen:
            continue
        views.append(RunView(folder.name, _command_of(folder), _folder_status(folder), folder, None,
                             read_jsonl(folder / "logging.jsonl")))
    return views


def find_run(manager: RunManager, run_id: str) -> Optional[RunView]:
    return next((v for v in list_runs(manager) if v.id == run_id), None)


def log_tail(view: RunView, lines: int = 40) -> str:
    """The last lines of the run's console (runs started here) or of its logging.jsonl (command-line runs)."""
    if view.record and Path(view.record["log"]).is_file():
        text = Path(view.record["log"]).read_text(encoding="utf-8", errors="replace")
        shown = [line.split("\r")[-1] or line for line in text.split("\n")]  # a progress bar: its latest state
        return "\n".join([line for line in shown if line.strip()][-lines:])
    return "\n".join(json.dumps(r) for r in view.log[-lines:])


def metric_frame(view: RunView) -> Any:
    """Long table (step, value, metric) of loss, learning rate and eval loss for the plots."""
    import pandas as pd

    rows = []
    for record in view.log:
        step = record.get("step")
        for metric in ("loss", "eval_loss", "learning_rate"):
            value = record.get(metric)
            if isinstance(step, int) and isinstance(value, (int, float)):
                rows.append({"step": step, "value": float(value), "metric": metric})
    return pd.DataFrame(rows, columns=["step", "value", "metric"])

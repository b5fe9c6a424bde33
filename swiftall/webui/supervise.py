"""`python -m swiftall.webui.supervise RECORD.json`: the first process of a run's own process group.

It starts the run's argument list (never a shell), waits for it and writes the exit code into the record, so a
page opened later (or a restarted web UI) can tell finished from failed from stopped. It survives SIGINT and
SIGTERM sent to the group (the run gets them and decides); SIGKILL ends both. Imports nothing heavy.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path


def _ignore(signum: int, frame: object) -> None:
    """A Python handler rather than SIG_IGN: handlers are reset when the child execs, SIG_IGN would be inherited."""


def update(record: Path, **values: object) -> None:
    data = json.loads(record.read_text())
    data.update(values)
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(record)


def main(record_path: str) -> int:
    record = Path(record_path)
    data = json.loads(record.read_text())
    signal.signal(signal.SIGINT, _ignore)
    signal.signal(signal.SIGTERM, _ignore)
    with open(data["log"], "ab", buffering=0) as log:
        try:
            child = subprocess.Popen(data["argv"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     cwd=data.get("cwd"))
        except OSError as exc:
            log.write(f"could not start {data['argv'][0]}: {exc}\n".encode())
            update(record, returncode=127, finished=time.time())
            return 127
        update(record, child_pid=child.pid)
        while True:
            try:
                code = child.wait()
                break
            except InterruptedError:  # pragma: no cover - wait is restarted by Python itself
                continue
    update(record, returncode=code, finished=time.time())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

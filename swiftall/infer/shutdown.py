"""Engine threads stop before the interpreter does.

A daemon thread still inside a torch call when Python finalizes is torn down mid-call, and the process aborts with
`terminate called without an active exception` (exit status 134). Every background worker of an engine (the
scheduler's loop, the multimodal generate worker) registers here when its thread starts; at exit -- a normal end, an
error or Ctrl-C -- each one still alive has its work cancelled and its thread joined. Engines are also closed
explicitly by the pipelines; this is the safety net for scripts that never call `close()`.
"""
from __future__ import annotations

import atexit
import threading
import weakref
from typing import Any

IDLE_EXIT_S = 5.0   # an engine's thread with nothing to do for this long ends; the next request starts another
EXIT_JOIN_S = 60.0  # the longest one worker may take to stop at exit (one forward step, at most a prefill)

_live: "weakref.WeakSet[Any]" = weakref.WeakSet()
_guard = threading.Lock()
_hooked = False


def stop_at_exit(worker: Any) -> None:
    """`worker.close(cancel=True, timeout=...)` runs at interpreter exit if the worker is still alive then."""
    global _hooked
    with _guard:
        _live.add(worker)
        if not _hooked:
            atexit.register(stop_all)
            _hooked = True


def stop_all() -> None:
    """Cancel and join every registered worker (called at exit; tests call it too)."""
    with _guard:
        workers = list(_live)
    for worker in workers:
        try:
            worker.close(cancel=True, timeout=EXIT_JOIN_S)
        except Exception:  # noqa: BLE001 - exiting anyway; one worker's failure must not keep others running
            pass

"""The chat's model in a process of its own. `swiftall webui --model M` starts it before importing Gradio, so torch,
transformers and the weights load on one core while the page imports Gradio on the other (in one process the two
imports take turns on the interpreter lock: measured, a thread bought nothing). The web UI process never imports
torch; closing an engine ends its process, so its memory is freed at once.

Protocol over a socket pair, pickled tuples: the parent sends the engine's options, the child answers
(None, "ready", max_model_len) or (None, "error", message); then (id, "stream"|"infer", args) requests, each answered
in a thread of the child by (id, "piece", text)... or (id, "result", value), then (id, "done", None) or
(id, "error", message); (id, "cancel", ()) stops a stream the page no longer reads."""
from __future__ import annotations

import importlib
import itertools
import queue
import signal
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any, Iterator, Optional

from ..infer.engine import Engine, RequestConfig
from ..utils.errors import SwiftallError


class ModelProcessError(SwiftallError):
    """An error raised in the model's process, worded as `swiftall infer` would show it."""


class RemoteEngine(Engine):
    """An Engine whose model lives in a child process built by `factory` ("module:function", options -> Engine).
    Construction returns at once; `ready()` waits for the model and raises its loading error."""

    def __init__(self, factory: str, options: dict[str, Any]):
        parent, child = socket.socketpair()
        self._proc = subprocess.Popen([sys.executable, "-m", "swiftall.webui.remote", factory, str(child.fileno())],
                                      pass_fds=[child.fileno()], stdin=subprocess.DEVNULL)
        child.close()
        self._conn = Connection(parent.detach())
        self._conn.send(dict(options))
        self._send_lock = threading.Lock()
        self._waiting: dict[int, queue.Queue] = {}
        self._ids = itertools.count()
        self._loaded = threading.Event()
        self._error: Optional[str] = None
        threading.Thread(target=self._read, daemon=True, name="swiftall-model-process").start()

    def _read(self) -> None:
        try:
            while True:
                rid, kind, value = self._conn.recv()
                if rid is None:
                    self._error = value if kind == "error" else None
                    self.max_model_len = value if kind == "ready" else None
                    self._loaded.set()
                elif rid in self._waiting:
                    self._waiting[rid].put((kind, value))
        except (EOFError, OSError):
            gone = f"the model's process ended (exit code {self._proc.wait()}); its messages are on the terminal"
            self._error = self._error or gone
            self._loaded.set()
            for waiting in list(self._waiting.values()):
                waiting.put(("error", gone))

    def ready(self) -> "RemoteEngine":
        self._loaded.wait()
        if self._error is not None:
            raise ModelProcessError(self._error)
        return self

    def _send(self, message: tuple) -> None:
        with self._send_lock:
            self._conn.send(message)

    def _call(self, kind: str, *args: Any) -> Iterator[tuple[str, Any]]:
        self.ready()
        rid, answers, finished = next(self._ids), queue.Queue(), False
        self._waiting[rid] = answers
        try:
            self._send((rid, kind, args))
            while True:
                what, value = answers.get()
                if what == "error":
                    finished = True
                    raise ModelProcessError(value)
                if what == "done":
                    finished = True
                    return
                yield what, value
        finally:
            self._waiting.pop(rid, None)
            if not finished:  # the reader went away: stop generating for nobody
                try:
                    self._send((rid, "cancel", ()))
                except OSError:
                    pass

    def infer(self, requests: list[Any], config: Optional[RequestConfig] = None) -> list[Any]:
        return [value for _, value in self._call("infer", requests, config)][0]

    def stream(self, request: Any, config: Optional[RequestConfig] = None) -> Iterator[str]:
        for _, piece in self._call("stream", request, config):
            yield piece

    def close(self) -> None:
        """End the model's process (it exits when its socket closes; terminated if it does not within 10 s)."""
        self._conn.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.terminate()
            self._proc.wait(10)


def _serve(conn: Connection, engine: Engine) -> None:
    send_lock, cancelled = threading.Lock(), set()

    def send(message: tuple) -> None:
        with send_lock:
            conn.send(message)

    def answer(rid: int, kind: str, args: tuple) -> None:
        from .forms import error_text

        try:
            if kind == "stream":
                for piece in engine.stream(*args):
                    if rid in cancelled:
                        break
                    send((rid, "piece", piece))
            else:
                send((rid, "result", engine.infer(*args)))
            send((rid, "done", None))
        except Exception as exc:  # noqa: BLE001 - the page shows it
            send((rid, "error", error_text(exc)))

    while True:
        try:
            rid, kind, args = conn.recv()
        except (EOFError, OSError):
            return
        if kind == "cancel":
            cancelled.add(rid)
        elif kind in ("stream", "infer"):
            threading.Thread(target=answer, args=(rid, kind, args), daemon=True).start()


def main(argv: list[str]) -> int:
    """The child: build the engine, answer requests until the parent closes the socket (or dies)."""
    from ..utils.env import choose_openmp_waits
    from .forms import error_text

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is the web UI's to handle
    choose_openmp_waits()  # as every swiftall command, before torch loads OpenMP (launch() may run in a notebook)
    factory, fd = argv
    conn = Connection(int(fd))
    options = conn.recv()
    module, name = factory.split(":")
    try:
        engine = getattr(importlib.import_module(module), name)(options)
    except Exception as exc:  # noqa: BLE001 - the page shows it
        conn.send((None, "error", error_text(exc)))
        return 1
    conn.send((None, "ready", getattr(engine, "max_model_len", None)))
    try:
        _serve(conn, engine)
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

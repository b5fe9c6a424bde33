"""Running the app: `serve_forever` for the deploy command, `ServerThread` for tests, notebooks and benchmarks."""
from __future__ import annotations

import errno
import logging
import signal
import socket
import threading
import time
from typing import Any, Optional

from ..utils.errors import ConfigError
from ..utils.log import get_logger

logger = get_logger(__name__)


def uvicorn_config(app: Any, host: str, port: int, **kwargs: Any) -> Any:
    import uvicorn

    # no timeout_graceful_shutdown: on SIGINT/SIGTERM uvicorn stops accepting and waits for in-flight requests
    return uvicorn.Config(app, host=host, port=port, log_level=kwargs.pop("log_level", "warning"),
                          access_log=False, **kwargs)


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening address, bound now: a port in use is reported at once (before a model loads), and uvicorn
    then serves on this very socket."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        why = "is in use (another server, or an earlier swiftall deploy, listens there)" \
            if exc.errno == errno.EADDRINUSE else f"cannot be used: {exc.strerror or exc}"
        raise ConfigError(f"--port {port}: {host}:{port} {why}; stop that program or pass another --port") from None
    return sock


def serve_forever(app: Any, host: str, port: int, on_ready: Optional[Any] = None,
                  sock: Optional[socket.socket] = None) -> None:
    """Serve until Ctrl-C/SIGTERM, on `sock` when given (see bind_socket), else on host:port."""
    import uvicorn

    server = _stopping_server(uvicorn, uvicorn_config(app, host, port))
    if on_ready is not None:
        threading.Thread(target=_when_started, args=(server, on_ready), daemon=True).start()
    server.run(sockets=[sock] if sock is not None else None)
    if server.signals:   # after a clean stop, as Ctrl-C ends every command (exit status 130)
        raise KeyboardInterrupt


def _stopping_server(uvicorn: Any, config: Any) -> Any:
    """uvicorn's server, stopping on Ctrl-C/SIGTERM as uvicorn does (the first waits for requests in flight, a
    second Ctrl-C cuts them off) but without re-raising the signal inside its event loop afterwards, which made
    asyncio cancel the cut-off requests' tasks mid-await and uvicorn log each one as a traceback."""

    class Server(uvicorn.Server):
        signals: list[int] = []

        def handle_exit(self, sig: int, frame: Any) -> None:
            self.signals = [*self.signals, sig]
            if self.should_exit and sig == signal.SIGINT:
                logger.warning("second Ctrl-C: stopping now; answers still being written are cut off")
                logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)  # their cancellations are the point
                self.force_exit = True
            else:
                self.should_exit = True

    return Server(config)


def _when_started(server: Any, callback: Any) -> None:
    while not server.started and not server.should_exit:
        time.sleep(0.05)
    if server.started:
        callback()


class ServerThread:
    """uvicorn in a background thread: `with ServerThread(app, port=0) as s: s.url`."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0):
        import uvicorn

        self.server = uvicorn.Server(uvicorn_config(app, host, port))
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.host = host

    def start(self, timeout: float = 60) -> "ServerThread":
        self.thread.start()
        deadline = time.time() + timeout
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 60) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

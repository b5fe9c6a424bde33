"""Running the app: `serve_forever` for the deploy command, `ServerThread` for tests, notebooks and benchmarks."""
from __future__ import annotations

import threading
import time
from typing import Any, Optional

from ..utils.log import get_logger

logger = get_logger(__name__)


def uvicorn_config(app: Any, host: str, port: int, **kwargs: Any) -> Any:
    import uvicorn

    # no timeout_graceful_shutdown: on SIGINT/SIGTERM uvicorn stops accepting and waits for in-flight requests
    return uvicorn.Config(app, host=host, port=port, log_level=kwargs.pop("log_level", "warning"),
                          access_log=False, **kwargs)


def serve_forever(app: Any, host: str, port: int, on_ready: Optional[Any] = None) -> None:
    import uvicorn

    server = uvicorn.Server(uvicorn_config(app, host, port))
    if on_ready is not None:
        threading.Thread(target=_when_started, args=(server, on_ready), daemon=True).start()
    server.run()


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

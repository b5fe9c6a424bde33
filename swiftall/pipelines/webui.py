"""swiftall webui: the Gradio page (chat, train, runs, evaluate, export, deploy) until Ctrl-C. Runs started from
the page are processes of their own and keep going when the page or this command stops."""
from __future__ import annotations

import contextlib
import errno
import importlib.util
import io
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..config.webui import WebuiConfig
from ..utils import env
from ..utils.errors import ConfigError
from ..utils.log import get_logger
from ..utils.plugins import load_plugins
from ..webui.app import engine_pool

logger = get_logger(__name__)
_PRINT_LOCK = threading.Lock()  # one preview at a time captures stdout


@dataclass
class Launched:
    url: str
    app: Any          # swiftall.webui.app.WebApp
    started_s: float  # seconds from the call to the page answering

    def close(self) -> None:
        self.app.demo.close()
        self.app.pool.close()


def check_port(host: str, port: int) -> int:
    """The port to serve on (a free one for 0); a port in use is one clear message instead of Gradio's retry loop."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"--port {port} is in use on {host} (another swiftall webui, or another program); "
                                  "choose another --port, or --port 0 for any free one") from None
            raise ConfigError(f"--host {host} --port {port}: cannot listen there: {exc.strerror}") from None
        return sock.getsockname()[1]


def engine_factory(options: dict[str, Any]) -> Any:
    """An engine from `swiftall infer` options, resolved and loaded exactly as that command does."""
    from .infer import build_engine, prepare_infer_config

    return build_engine(prepare_infer_config(options))


def model_process(options: dict[str, Any]) -> Any:
    """The chat's engine: `engine_factory` run in a process of its own (swiftall.webui.remote), started at once."""
    from ..webui.remote import RemoteEngine

    return RemoteEngine("swiftall.pipelines.webui:engine_factory", options)


def template_text(argv: list[str]) -> str:
    """What `swiftall template show ARGV` prints (the Train tab's preview)."""
    from .template_show import template_main

    out = io.StringIO()
    with _PRINT_LOCK, contextlib.redirect_stdout(out):
        template_main(list(argv))
    return out.getvalue()


def launch(config: Any = None, preload: bool = True) -> Launched:
    """Start the page in background threads and return once it answers (tests, notebooks and webui_main)."""
    started = time.perf_counter()
    cfg = WebuiConfig.from_any(config)
    load_plugins(cfg.plugin)
    section = cfg.section("webui")
    credentials = section.credentials()
    if cfg.open_to_network() and not credentials:
        logger.warning(f"serving the web UI on {cfg.host} without --auth: anyone who can reach this port can use "
                       "the models and start processes on this machine; pass --auth user:password")
    port = check_port(cfg.host, cfg.port)
    temp = Path(cfg.runs_dir).expanduser().resolve() / ".webui" / "tmp"
    temp.mkdir(parents=True, exist_ok=True)
    pool = engine_pool(cfg, model_process)
    if preload and (cfg.model or cfg.model_type or cfg.adapters):
        _report_load(pool.start(*pool.default_model()), started)  # loads in its own process while gradio imports
    try:
        app = _serve(cfg, pool, port, credentials, temp)
    except BaseException:
        pool.close()
        raise
    url = f"http://{'127.0.0.1' if cfg.host in ('0.0.0.0', '::') else cfg.host}:{port}"
    return Launched(url, app, time.perf_counter() - started)


def _serve(cfg: Any, pool: Any, port: int, credentials: Any, temp: Path) -> Any:
    env.quiet_gradio(str(temp))  # before gradio is imported
    from ..webui.app import build_app

    app = build_app(cfg, pool, template_text, has_eval=importlib.util.find_spec(
        "swiftall.pipelines.eval") is not None)
    app.demo.queue(default_concurrency_limit=4)
    app.demo.launch(server_name=cfg.host, server_port=port, auth=credentials or None, share=cfg.share,
                    prevent_thread_lock=True, quiet=True, show_error=False, ssr_mode=False,
                    max_file_size="2gb")
    return app


def _report_load(engine: Any, started: float) -> None:
    """Say on the terminal when the command line's model is loaded, or why it is not (the page says it too, at the
    first message)."""
    def wait() -> None:
        try:
            engine.ready()
        except Exception as exc:  # noqa: BLE001 - a message, never a traceback
            logger.warning(f"could not load the model: {exc}")
            return
        logger.info(f"model loaded {time.perf_counter() - started:.1f}s after start")

    threading.Thread(target=wait, daemon=True, name="swiftall-model-load").start()


def webui_main(config: Any = None) -> Optional[Launched]:
    launched = launch(config)
    logger.info(f"web UI on {launched.url} (answering after {launched.started_s:.1f}s); runs in "
                f"{launched.app.manager.root}; Ctrl-C stops the page, runs it started keep going")
    print(f"swiftall webui: {launched.url}", flush=True)
    try:
        while True:  # short sleeps: a Ctrl-C delivered to one of torch's threads is handled within a second
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        launched.close()
    return launched

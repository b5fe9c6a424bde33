"""swiftall deploy: load an engine, serve it over the OpenAI API until interrupted."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..config.deploy import DeployConfig
from ..tuners.runs import parse_adapters
from ..utils.log import get_logger
from ..utils.plugins import load_plugins
from .common import fill_model_from_run, names_a_model, split_full_runs

logger = get_logger(__name__)


def prepare_deploy_config(config: Any) -> DeployConfig:
    cfg = DeployConfig.from_any(config)
    load_plugins(getattr(cfg, "plugin", None))
    split_full_runs(cfg)
    fill_model_from_run(cfg)
    return cfg


def adapter_names(adapters: list[str]) -> tuple[list[str], bool]:
    """Names a request's `model` can choose, and whether the served name means the base model (all adapters
    named `name=DIR`) or the first adapter (an unnamed `--adapters DIR`, as `swiftall infer` uses it)."""
    specs = parse_adapters(adapters)
    return [spec.name for spec in specs], all(spec.named for spec in specs)


def build_app(cfg: DeployConfig) -> tuple[Any, Any]:
    """(app, engine) for a config: the engine loaded, the app ready to run."""
    from ..serve import ServeSettings, create_app
    from .infer import build_engine

    engine = build_engine(cfg)
    names, base_is_default = adapter_names(cfg.adapters)
    settings = ServeSettings(served_model_name=cfg.served_model_name or _default_name(cfg), adapters=names,
                             base_is_default=base_is_default, api_key=cfg.api_key, max_body_bytes=cfg.max_body_bytes,
                             allow_local_media=cfg.allow_local_media,
                             allow_private_media_urls=cfg.allow_private_media_urls,
                             default_max_tokens=cfg.max_new_tokens)
    return create_app(engine, settings), engine


def _default_name(cfg: DeployConfig) -> str:
    """The registered name when there is one (also for a run trained from it), else the model folder's name."""
    for name in (cfg.model, cfg.model_type):
        if name and names_a_model(name):
            return name
    name = cfg.model_type or cfg.model or "model"
    return Path(name).name if Path(name).exists() else name


def deploy_main(config: Any = None) -> None:
    from ..serve.server import bind_socket, serve_forever

    started = time.perf_counter()
    cfg = prepare_deploy_config(config)
    sock = bind_socket(cfg.host, cfg.port)  # a port in use is found before the model loads
    try:
        app, _engine = build_app(cfg)
    except BaseException:
        sock.close()
        raise
    name = app.state.handlers.settings.served_model_name
    if cfg.host not in ("127.0.0.1", "localhost", "::1") and not cfg.api_key:
        logger.warning(f"serving on {cfg.host} without --api_key: anyone who can reach this port can use the model")

    def ready() -> None:
        logger.info(f"serving '{name}' on http://{cfg.host}:{sock.getsockname()[1]}/v1 (ready in "
                    f"{time.perf_counter() - started:.1f}s); Ctrl-C stops after in-flight requests finish")

    serve_forever(app, cfg.host, cfg.port, on_ready=ready, sock=sock)

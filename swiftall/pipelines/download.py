"""swiftall download: fetch a model into the local cache."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import DownloadConfig
from ..utils.errors import ModelNotFoundError
from ..utils.log import get_logger
from ..utils.plugins import load_plugins
from .common import model_info

logger = get_logger(__name__)


def download_main(config: Any = None) -> Path:
    cfg = DownloadConfig.from_any(config)
    load_plugins(getattr(cfg, "plugin", None))
    try:
        info = model_info(cfg)
    except ModelNotFoundError as exc:
        if getattr(exc, "model_id", None) is None:
            raise
        raise ModelNotFoundError(_advice(exc)) from None
    logger.info(f"{info.name} is in {info.path}")
    print(info.path)
    return info.path


def _advice(exc: ModelNotFoundError) -> str:
    """What to do when download itself cannot fetch: not 'run swiftall download'."""
    model_id, cache = exc.model_id, exc.cache  # type: ignore[attr-defined]
    if exc.offline:  # type: ignore[attr-defined]
        return (f"cannot download '{model_id}': offline mode is on (HF_HUB_OFFLINE or SWIFTALL_OFFLINE is set) and "
                f"the model is not in the cache ({cache}). Unset the variable on a machine with network access and "
                "run this command again, or copy the model's folder here and pass it as --model DIR to the other "
                "commands.")
    return (f"cannot download '{model_id}' into {cache}: the hub could not be reached or has no such repository. "
            "Check the id (and --hub), the network connection or proxy, and for gated models your access token "
            "(huggingface-cli login).")

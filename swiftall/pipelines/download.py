"""swiftall download: fetch a model into the local cache."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import DownloadConfig
from ..utils.log import get_logger
from ..utils.plugins import load_plugins
from .common import model_info

logger = get_logger(__name__)


def download_main(config: Any = None) -> Path:
    cfg = DownloadConfig.from_any(config)
    load_plugins(getattr(cfg, "plugin", None))
    info = model_info(cfg)
    logger.info(f"{info.name} is in {info.path}")
    print(info.path)
    return info.path

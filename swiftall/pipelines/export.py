"""swiftall export: merge LoRA adapters into a standalone model folder."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import ExportConfig
from ..utils.errors import ConfigError
from ..utils.log import get_logger
from ..utils.plugins import load_plugins
from .common import fill_model_from_run, model_info, run_args

logger = get_logger(__name__)


def export_main(config: Any = None) -> Path:
    cfg = ExportConfig.from_any(config)
    load_plugins(getattr(cfg, "plugin", None))
    for folder in cfg.adapters:
        if not (Path(folder) / "adapter_config.json").is_file():
            raise ConfigError(f"--adapters {folder}: no adapter_config.json (a full fine-tune is already a "
                              "standalone model: load its folder directly)")
    fill_model_from_run(cfg)
    out = Path(cfg.output_dir) if cfg.output_dir else Path(str(Path(cfg.adapters[0]).resolve()) + "-merged")
    if out.exists() and any(out.iterdir()) and not cfg.overwrite_output_dir:
        raise ConfigError(f"--output_dir {out} is not empty; choose a new folder or pass --overwrite_output_dir true")
    from ..export.merge import merge_lora

    merge_lora(model_info(cfg), cfg.adapters, out, cfg.torch_dtype, cfg.trust_remote_code)
    saved = run_args(cfg.adapters[0]) or {}
    record = {"command": "export", "merged_from": cfg.adapters, "base_model": cfg.model,
              "system": saved.get("system")}
    (out / "swiftall_export.json").write_text(json.dumps(record, indent=2) + "\n")
    logger.info(f"merged model saved to {out} (load it with transformers, or swiftall infer --model {out})")
    return out

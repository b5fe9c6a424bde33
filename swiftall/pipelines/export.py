"""swiftall export: merge LoRA adapters into a standalone model folder."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..config import ExportConfig
from ..tuners.runs import parse_adapters
from ..utils.errors import ConfigError
from ..utils.log import get_logger
from ..utils.plugins import load_plugins
from .common import fill_model_from_run, model_info, run_args

logger = get_logger(__name__)


def merged_folder(adapter: Path) -> Path:
    """Where a merge goes by default: RUN-merged beside RUN, and RUN-checkpoint-N-merged beside RUN for a
    checkpoint (never inside the run folder, which --resume_from_checkpoint and infer read)."""
    adapter = adapter.resolve()
    if re.fullmatch(r"checkpoint-\d+", adapter.name):
        return adapter.parent.parent / f"{adapter.parent.name}-{adapter.name}-merged"
    return adapter.parent / f"{adapter.name}-merged"


def export_main(config: Any = None) -> Path:
    cfg = ExportConfig.from_any(config)
    load_plugins(getattr(cfg, "plugin", None))
    specs = parse_adapters(cfg.adapters)
    for spec in specs:
        if not (spec.path / "adapter_config.json").is_file():
            raise ConfigError(f"--adapters {spec.item}: no adapter_config.json in {spec.path} (a full fine-tune is "
                              "already a standalone model: load its folder directly)")
    fill_model_from_run(cfg)
    out = Path(cfg.output_dir) if cfg.output_dir else merged_folder(specs[0].path)
    if out.exists() and any(out.iterdir()) and not cfg.overwrite_output_dir:
        raise ConfigError(f"--output_dir {out} is not empty; choose a new folder or pass --overwrite_output_dir true")
    from ..export.merge import merge_lora

    merge_lora(model_info(cfg), cfg.adapters, out, cfg.torch_dtype, cfg.trust_remote_code)
    saved = run_args(specs[0].path) or {}
    record = {"command": "export", "merged_from": cfg.adapters, "base_model": cfg.model,
              "system": saved.get("system")}
    (out / "swiftall_export.json").write_text(json.dumps(record, indent=2) + "\n")
    logger.info(f"merged model saved to {out} (load it with transformers, or swiftall infer --model {out})")
    return out

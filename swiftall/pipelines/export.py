"""swiftall export: merge LoRA adapters, quantize (GPTQ, AWQ, bnb, FP8) or convert to GGUF, each export checked
against the original; `--check DIR` checks an existing export; `--gguf_lora true` writes adapters for llama.cpp."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..utils.errors import ConfigError
from ..utils.log import get_logger
from .common import beside_run, fill_model_from_run, model_info, run_args
from .export_data import texts_for

logger = get_logger(__name__)


def export_config(config: Any) -> Any:
    """A config object, dict or argv -> ExportConfig; any other object (a stand-in namespace) -> its attributes over
    ExportConfig's defaults."""
    if config is None or isinstance(config, (dict, list, tuple)) or hasattr(config, "to_dict"):
        from ..config import ExportConfig

        return ExportConfig.from_any(list(config) if isinstance(config, tuple) else config)
    from ..export.options import export_values

    cfg = SimpleNamespace(**export_values(config))   # ExportConfig's defaults under the object's attributes
    cfg.adapters = list(cfg.adapters or [])
    return cfg


def export_main(config: Any = None) -> Path:
    from ..export.options import ExportOptions

    cfg = export_config(config)
    opts = ExportOptions.from_config(cfg)
    for folder in cfg.adapters:
        if not (Path(folder) / "adapter_config.json").is_file():
            raise ConfigError(f"--adapters {folder}: no adapter_config.json (a full fine-tune is already a "
                              "standalone model: pass its folder as --model)")
    fill_model_from_run(cfg)
    if opts.check:
        return _check_only(cfg, opts)
    if opts.gguf_lora:
        return _gguf_lora(cfg, opts)
    if not opts.quant_method:
        return _merge_only(cfg, opts)
    return _quantize(cfg, opts)


def _default_out(cfg: Any, suffix: str) -> Path:
    if cfg.output_dir:
        return Path(cfg.output_dir)
    if cfg.adapters:
        return beside_run(cfg.adapters[0], suffix)  # RUN/checkpoint-N -> RUN-checkpoint-N-<suffix>, beside RUN
    name = Path(cfg.model or cfg.model_type).name.replace(".gguf", "")
    return Path("output") / f"{name}-{suffix}"


def _record(cfg: Any) -> dict[str, Any]:
    saved = run_args(cfg.adapters[0]) if cfg.adapters else None
    return {"command": "export", "merged_from": cfg.adapters, "base_model": cfg.model or cfg.model_type,
            "system": (saved or {}).get("system")}


def _merge_only(cfg: Any, opts: Any) -> Path:
    if not cfg.adapters:
        raise ConfigError("swiftall export: nothing to do; pass --adapters DIR --merge_lora true, or "
                          "--quant_method gptq|awq|bnb|fp8|gguf")
    from ..export.merge import merge_lora
    from ..export.output import staged_dir

    out = _default_out(cfg, "merged")
    with staged_dir(out, opts.overwrite) as stage:
        merge_lora(model_info(cfg), cfg.adapters, stage, cfg.torch_dtype, cfg.trust_remote_code)
        (stage / "swiftall_export.json").write_text(json.dumps(_record(cfg), indent=2) + "\n")
    logger.info(f"merged model saved to {out} (load it with transformers, or swiftall infer --model {out})")
    return out


def _quantize(cfg: Any, opts: Any) -> Path:
    from ..export.merge import merge_lora
    from ..export.output import refuse_existing, scratch_dir
    from ..export.run import export_model, finish
    from ..models import load_tokenizer

    info = model_info(cfg)
    out = _default_out(cfg, opts.label())
    refuse_existing(out, opts.overwrite)
    tokenizer = load_tokenizer(info, cfg.trust_remote_code)
    texts = texts_for(cfg, tokenizer, opts)   # a bad or empty calibration set stops before any model loads
    record = {**_record(cfg), "quant_method": opts.quant_method, "quant_bits": opts.quant_bits}
    with scratch_dir(out.parent, out.name + ".merge") as scratch:
        src = info.path
        if cfg.adapters:
            src = merge_lora(info, cfg.adapters, scratch / "merged", "float32", cfg.trust_remote_code)
        report = export_model(src, out, opts, tokenizer, texts, record, family=info.family)
    _push(out, opts)
    logger.info(f"{opts.label()} export saved to {out}")
    finish(report, out)
    return out


def _check_only(cfg: Any, opts: Any) -> Path:
    from ..export.check import format_table, write_report
    from ..export.run import check_folder, finish
    from ..models import load_model, load_tokenizer
    from ..tuners import attach_adapters

    target = Path(opts.check)
    if not target.exists():
        raise ConfigError(f"--check {target}: no such file or folder")
    if not (cfg.model or cfg.model_type):
        raise ConfigError("--check DIR needs --model ORIGINAL (the unquantized model to compare with)")
    info = model_info(cfg)
    tokenizer = load_tokenizer(info, cfg.trust_remote_code)
    texts = texts_for(cfg, tokenizer, opts)
    reference = load_model(info, "float32", None, cfg.trust_remote_code, device="cpu")
    if cfg.adapters:
        reference = attach_adapters(reference, cfg.adapters).merge_and_unload()
    report = {"command": "export --check", "exported": str(target), "original": cfg.model or cfg.model_type,
              "method": "check"}
    report["check"] = check_folder(target, None, tokenizer, texts, opts, reference=reference)
    folder = target if target.is_dir() else target.parent
    write_report(folder, report)
    logger.info(format_table(report))
    finish(report, folder)
    return folder


def _gguf_lora(cfg: Any, opts: Any) -> Path:
    if not cfg.adapters:
        raise ConfigError("--gguf_lora true needs --adapters DIR (a LoRA run folder)")
    from ..export.gguf_lora import export_lora_gguf
    from ..export.output import staged_dir

    info = model_info(cfg)
    out = _default_out(cfg, "gguf-lora")
    with staged_dir(out, opts.overwrite) as stage:
        path = export_lora_gguf(Path(cfg.adapters[0]), info.path, stage / f"{Path(cfg.adapters[0]).name}-lora.gguf")
        (stage / "swiftall_export.json").write_text(json.dumps({**_record(cfg), "gguf_lora": path.name}, indent=2))
    logger.info(f"LoRA adapter for llama.cpp saved to {out} (llama-cli -m BASE.gguf --lora {path.name})")
    return out


def _push(out: Path, opts: Any) -> None:
    if not opts.push_to_hub:
        return
    from ..export.hub import push_folder

    push_folder(out, opts.hub_model_id, private=opts.hub_private)

"""One export from a resolved model: merge adapters (scratch), quantize or convert into a staged folder renamed at
the end, then check what was written against the unquantized model and write export_report.json."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

from ..utils.log import get_logger
from .calib import TextSplit
from .check import enforce, format_table, run_check, write_report
from .options import ExportOptions
from .output import file_sizes, scratch_dir, staged_dir

logger = get_logger(__name__)


def quantize_into(src: Path, stage: Path, opts: ExportOptions, texts: TextSplit, family: Any,
                  scratch: Path) -> dict[str, Any]:
    """Write the quantized/converted model into `stage`; returns details for the report."""
    from .quant import export_bnb, export_fp8, export_gptq, skipped_prefixes

    skip = skipped_prefixes(family)
    method = opts.quant_method
    if method == "gguf":
        from .gguf import export_gguf

        path = export_gguf(src, stage, opts.gguf_type, scratch)
        return {"gguf_file": path.name, "gguf_type": opts.gguf_type}
    if method == "bnb":
        export_bnb(src, stage, opts.quant_bits, opts.bnb_4bit_quant_type, skip)
    elif method in ("gptq", "awq"):
        used = export_gptq(src, stage, opts.quant_bits, opts.group_size, texts.calibration, opts.quant_batch_size,
                           method, skip)
        return {**used, "unquantized_prefixes": skip}
    elif method == "fp8":
        export_fp8(src, stage, skip)
    return {"unquantized_prefixes": skip}


def save_side_files(src: Path, stage: Path, tokenizer: Any, opts: ExportOptions, record: dict[str, Any]) -> None:
    if opts.quant_method != "gguf":
        tokenizer.save_pretrained(stage)
        gen = src / "generation_config.json"
        if gen.is_file() and not (stage / "generation_config.json").is_file():
            (stage / "generation_config.json").write_text(gen.read_text())
    elif opts.to_ollama:
        from .ollama import write_modelfile

        gen = src / "generation_config.json"
        write_modelfile(stage, record["gguf_file"], tokenizer, json.loads(gen.read_text()) if gen.is_file() else None)
    (stage / "swiftall_export.json").write_text(json.dumps(record, indent=2, default=str) + "\n")


def export_model(src: Path, out: Path, opts: ExportOptions, tokenizer: Any, texts: TextSplit, record: dict[str, Any],
                 family: Any = None, reference: Optional[Any] = None) -> dict[str, Any]:
    """src (an unquantized HF folder) -> out; returns the report (written into out)."""
    start = time.perf_counter()
    with scratch_dir(out.parent, out.name + ".work") as scratch, staged_dir(out, opts.overwrite) as stage:
        record = {**record, **quantize_into(src, stage, opts, texts, family, scratch)}
        save_side_files(src, stage, tokenizer, opts, record)
    report: dict[str, Any] = {**record, "method": opts.label(), "output_dir": str(out),
                              "export_seconds": round(time.perf_counter() - start, 2), "files": file_sizes(out)}
    if opts.export_check:
        report["check"] = check_folder(out, src, tokenizer, texts, opts, reference=reference)
        logger.info(format_table(report))
    write_report(out, report)
    return report


def check_folder(exported: Path, original: Optional[Path], tokenizer: Any, texts: TextSplit, opts: ExportOptions,
                 reference: Optional[Any] = None, prefer: str = "auto") -> dict[str, Any]:
    """Load both models and compare them; `reference` (a loaded transformers model) wins over `original`."""
    from .scorers import HfScorer, load_exported, load_hf_folder

    ref = HfScorer(reference if reference is not None else load_hf_folder(original))
    exp = load_exported(exported, prefer=prefer)
    try:
        result = run_check(ref, exp, tokenizer, texts.held_out, opts.check_prompts, opts.check_max_new_tokens,
                           opts.max_ppl_increase)
    finally:
        exp.close()
    result["held_out_source"] = texts.source
    return result


def finish(report: dict[str, Any], out: Path) -> None:
    """Fail (files kept) when the check crossed a threshold."""
    if "check" in report:
        enforce(report, out)

"""report.json (scores with intervals and counts, per subset, the resolved config, data hashes, package
versions), report.md and the table printed at the end of a run."""
from __future__ import annotations

import json
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

PACKAGES = ("swiftall", "torch", "transformers", "peft", "datasets", "tokenizers", "sacrebleu", "rouge-score",
            "pycocoevalcap", "jiwer", "lm_eval", "evalscope", "vllm")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def new_run_dir(root: str | Path) -> Path:
    root = Path(root)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder, n = root / stamp, 1
    while folder.exists():
        n += 1
        folder = root / f"{stamp}-{n}"
    (folder / "predictions").mkdir(parents=True)
    return folder


def latest_run_dir(root: str | Path) -> Optional[Path]:
    root = Path(root)
    runs = sorted((p for p in root.glob("*") if (p / "predictions").is_dir()), key=lambda p: p.stat().st_mtime)
    return runs[-1] if runs else None


def _fmt(value: Optional[float], name: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if name in ("cider", "bleu") else f"{value:.4f}"


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, result in report["datasets"].items():
        for metric, entry in result["metrics"].items():
            lo, hi = entry["ci95"]
            ci = f"[{_fmt(lo, metric)}, {_fmt(hi, metric)}]"
            star = " *" if metric == result["primary"] else ""
            rows.append([name, metric + star, _fmt(entry["value"], metric), ci, str(entry["n"])])
    return rows


def format_table(report: dict[str, Any]) -> str:
    header = ["dataset", "metric", "score", "95% CI", "n"]
    rows = [header] + table_rows(report)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n(* the primary metric)"


def markdown(report: dict[str, Any]) -> str:
    cfg = report["config"]
    lines = [f"# swiftall eval: {report['run_dir']}", "",
             f"model `{cfg.get('model')}`" + (f", adapters `{cfg.get('adapters')}`" if cfg.get("adapters") else "")
             + (f", url `{cfg.get('eval_url')}`" if cfg.get("eval_url") else ""),
             f"backend {cfg.get('eval_backend')} / {cfg.get('infer_backend')}, seed {cfg.get('eval_seed')}, "
             f"few-shot {cfg.get('eval_num_fewshot')}, generation `{json.dumps(cfg.get('generation'))}`", "",
             "| dataset | metric | score | 95% CI | n |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in table_rows(report)]
    for name, result in report["datasets"].items():
        src = result["source"]
        lines += ["", f"## {name}", "",
                  f"type {result['eval_type']}, mode {result['mode']}, chat template "
                  f"{'on' if result['chat_template'] else 'off'}, data hash `{result['data_hash']}`, source "
                  f"`{src.get('path') or src.get('hub_id')}`" + (f" ({src.get('revision')})" if src.get("revision")
                                                                    else "")]
        if result.get("macro_average") is not None:
            lines.append(f"macro average over subsets: {result['macro_average']:.4f}")
        for warning in result.get("warnings", []):
            lines.append(f"**warning:** {warning}")
        if result.get("subsets"):
            lines += ["", "| subset | " + " | ".join(result["metrics"]) + " | n |",
                      "|---|" + "---|" * (len(result["metrics"]) + 1)]
            for subset, metrics in result["subsets"].items():
                n = next(iter(metrics.values()))["n"] if metrics else 0
                lines.append(f"| {subset} | " + " | ".join(_fmt(m["value"], k) for k, m in metrics.items())
                             + f" | {n} |")
    return "\n".join(lines) + "\n"


def write_report(folder: Path, report: dict[str, Any]) -> None:
    (folder / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str))
    (folder / "report.md").write_text(markdown(report))

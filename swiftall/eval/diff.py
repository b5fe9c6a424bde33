"""`swiftall eval diff RUN_A RUN_B`: two runs compared item by item: per dataset the items that flipped (right
in one run, wrong in the other), the score change with a paired-bootstrap 95% interval over the items both runs
answered, and every setting that differs between the two reports."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..utils.errors import ConfigError
from .evaluate import load_report, run_folder
from .predictions import read_predictions
from .stats import paired_difference


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def setting_changes(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[Any]]:
    fa, fb = _flatten(a), _flatten(b)
    return {k: [fa.get(k), fb.get(k)] for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)}


def dataset_diff(name: str, result_a: dict, result_b: dict, folder_a: Path, folder_b: Path) -> dict[str, Any]:
    primary = result_a["primary"]
    preds_a = {r["id"]: r for r in read_predictions(folder_a / "predictions" / f"{name}.jsonl")}
    preds_b = {r["id"]: r for r in read_predictions(folder_b / "predictions" / f"{name}.jsonl")}
    shared = [i for i in preds_a if i in preds_b]
    sa = [float(preds_a[i]["score"].get(primary, 0.0)) for i in shared]
    sb = [float(preds_b[i]["score"].get(primary, 0.0)) for i in shared]
    flipped = []
    for item_id, x, y in zip(shared, sa, sb):
        if x != y:
            flipped.append({"id": item_id, primary: [x, y], "extracted": [preds_a[item_id].get("extracted"),
                                                                          preds_b[item_id].get("extracted")],
                            "references": preds_b[item_id].get("references")})
    settings = {k: v for k, v in setting_changes(
        {k: result_a.get(k) for k in ("eval_type", "mode", "chat_template", "num_fewshot", "max_new_tokens",
                                      "data_hash", "source")},
        {k: result_b.get(k) for k in ("eval_type", "mode", "chat_template", "num_fewshot", "max_new_tokens",
                                      "data_hash", "source")}).items()}
    return {"primary": primary, "a": result_a["metrics"][primary]["value"], "b": result_b["metrics"][primary]["value"],
            "change": paired_difference(sa, sb) if shared else None, "items_compared": len(shared),
            "only_in_a": len(set(preds_a) - set(preds_b)), "only_in_b": len(set(preds_b) - set(preds_a)),
            "better": sum(1 for f in flipped if f[primary][1] > f[primary][0]),
            "worse": sum(1 for f in flipped if f[primary][1] < f[primary][0]), "flipped": flipped,
            "settings": settings}


def eval_diff(run_a: str | Path, run_b: str | Path) -> dict[str, Any]:
    report_a, report_b = load_report(run_a), load_report(run_b)
    folder_a, folder_b = run_folder(run_a), run_folder(run_b)
    shared = [n for n in report_a["datasets"] if n in report_b["datasets"]]
    if not shared:
        raise ConfigError(f"eval diff: {run_a} and {run_b} share no dataset (A: {', '.join(report_a['datasets'])}; "
                          f"B: {', '.join(report_b['datasets'])})")
    return {"a": str(folder_a), "b": str(folder_b),
            "settings": setting_changes(report_a["config"], report_b["config"]),
            "packages": setting_changes(report_a.get("packages", {}), report_b.get("packages", {})),
            "datasets": {n: dataset_diff(n, report_a["datasets"][n], report_b["datasets"][n], folder_a, folder_b)
                         for n in shared}}


def format_diff(diff: dict[str, Any], show: int = 10) -> str:
    lines = [f"A: {diff['a']}", f"B: {diff['b']}"]
    for key, (x, y) in diff["settings"].items():
        lines.append(f"  setting {key}: {x!r} -> {y!r}")
    for name, d in diff["datasets"].items():
        change = d["change"] or {}
        ci = change.get("ci95") or [None, None]
        lines.append(f"{name}: {d['primary']} {d['a']} -> {d['b']} (change {change.get('value')}, 95% CI "
                     f"[{ci[0]}, {ci[1]}], {d['items_compared']} items; {d['better']} better, {d['worse']} worse)")
        for key, (x, y) in d["settings"].items():
            lines.append(f"  {key}: {x!r} -> {y!r}")
        for flip in d["flipped"][:show]:
            lines.append(f"  item {flip['id']}: {flip[d['primary']][0]} -> {flip[d['primary']][1]}  "
                         f"answer {flip['extracted'][0]!r} -> {flip['extracted'][1]!r}")
        if len(d["flipped"]) > show:
            lines.append(f"  ... {len(d['flipped']) - show} more flipped items")
    return "\n".join(lines)

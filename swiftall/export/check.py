"""The export check: the exported model against the unquantized original on held-out text (perplexity of each,
mean KL divergence of next-token distributions, top-1 agreement) and greedy answers to a few prompts side by
side; `export_report.json`, a printed table, and a failure (files kept) past --max_ppl_increase."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..utils.log import get_logger
from .errors import ExportCheckError
from .scorers import Scorer

logger = get_logger(__name__)
REPORT = "export_report.json"


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def compare_logits(reference: Scorer, exported: Scorer, rows: Sequence[Sequence[int]]) -> dict[str, Any]:
    """Perplexity of both models, mean KL(reference || exported) and top-1 agreement over all next tokens."""
    nll_ref = nll_exp = kl = 0.0
    agree = positions = 0
    for ids in rows:
        a, b = reference.logits(ids), exported.logits(ids)
        vocab = min(a.shape[-1], b.shape[-1])   # GGUF/quantized heads may drop the padded rows of the vocabulary
        la, lb = _log_softmax(a[:-1, :vocab]), _log_softmax(b[:-1, :vocab])
        targets = np.asarray(ids[1:])
        steps = np.arange(len(targets))
        nll_ref -= float(la[steps, targets].sum())
        nll_exp -= float(lb[steps, targets].sum())
        kl += float((np.exp(la) * (la - lb)).sum())
        agree += int((la.argmax(-1) == lb.argmax(-1)).sum())
        positions += len(targets)
    if positions == 0:
        raise ExportCheckError("the export check has no held-out tokens to compare (rows of fewer than 2 tokens)")
    ppl_ref, ppl_exp = math.exp(nll_ref / positions), math.exp(nll_exp / positions)
    return {"tokens": positions, "rows": len(rows), "perplexity_original": ppl_ref, "perplexity_exported": ppl_exp,
            "perplexity_increase": ppl_exp / ppl_ref - 1.0, "mean_kl": kl / positions,
            "top1_agreement": agree / positions}


def greedy_side_by_side(reference: Scorer, exported: Scorer, tokenizer: Any, prompts: Sequence[str],
                        max_new_tokens: int) -> list[dict[str, Any]]:
    stop = stop_token_ids(tokenizer)
    out = []
    for prompt in prompts:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            tokenize=True, return_dict=False)
        ids = list(ids["input_ids"] if isinstance(ids, dict) else ids)
        a = tokenizer.decode(reference.greedy(ids, max_new_tokens, stop), skip_special_tokens=True)
        b = tokenizer.decode(exported.greedy(ids, max_new_tokens, stop), skip_special_tokens=True)
        out.append({"prompt": prompt, "original": a, "exported": b, "same": a == b})
    return out


def stop_token_ids(tokenizer: Any) -> set[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    for token in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>"):
        tid = tokenizer.convert_tokens_to_ids(token) if token in tokenizer.get_vocab() else None
        if tid is not None:
            ids.add(tid)
    return ids


def run_check(reference: Scorer, exported: Scorer, tokenizer: Any, held_out: Sequence[Sequence[int]],
              prompts: Sequence[str], max_new_tokens: int, max_ppl_increase: float) -> dict[str, Any]:
    metrics = compare_logits(reference, exported, held_out)
    answers = greedy_side_by_side(reference, exported, tokenizer, prompts, max_new_tokens) if prompts else []
    passed = metrics["perplexity_increase"] <= max_ppl_increase
    return {"loader": exported.loader, **metrics, "greedy": answers,
            "greedy_same": sum(a["same"] for a in answers), "max_ppl_increase": max_ppl_increase,
            "passed": passed}


def format_table(report: dict[str, Any]) -> str:
    c = report["check"]
    rows = [("", "original", "exported"),
            ("perplexity", f"{c['perplexity_original']:.3f}", f"{c['perplexity_exported']:.3f}"),
            ("ppl increase", "", f"{100 * c['perplexity_increase']:+.2f}% (max {100 * c['max_ppl_increase']:.0f}%)"),
            ("mean KL", "", f"{c['mean_kl']:.5f}"), ("top-1 agreement", "", f"{100 * c['top1_agreement']:.1f}%")]
    lines = [f"export check: {report.get('method', '')} loaded with {c['loader']}, "
             f"{c['rows']} held-out rows / {c['tokens']} tokens"]
    lines += [f"  {a:<16} {b:>12} {x}" for a, b, x in rows]
    for g in c["greedy"]:
        mark = "same" if g["same"] else "DIFFERENT"
        lines.append(f"  [{mark}] {g['prompt']!r}\n      original: {g['original']!r}"
                     f"\n      exported: {g['exported']!r}")
    lines.append("  PASSED" if c["passed"] else "  FAILED: perplexity rose past --max_ppl_increase")
    return "\n".join(lines)


def write_report(folder: Path, report: dict[str, Any]) -> Path:
    path = Path(folder) / REPORT
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return path


def enforce(report: dict[str, Any], folder: Path) -> None:
    c = report["check"]
    if not c["passed"]:
        raise ExportCheckError(
            f"export check failed: perplexity {c['perplexity_original']:.3f} -> {c['perplexity_exported']:.3f} "
            f"({100 * c['perplexity_increase']:+.1f}%, over --max_ppl_increase {c['max_ppl_increase']}); the files "
            f"are kept in {folder} with {REPORT}. Try more bits, a smaller --group_size or another --gguf_type")

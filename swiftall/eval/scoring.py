"""Scoring: each answer's extraction and per-item scores, then every metric with its 95% interval and item count,
for the whole set and per subset.

Metric sets by eval type (a benchmark or --eval_dataset_args '{"NAME": {"metrics": [...]}}' may choose others):
qa: exact_match (normalised), rougeL/rouge1/rouge2, bleu (sacrebleu corpus); `contains` (the reference anywhere in
the answer) on request · math: exact_match on the final number · mcq: acc (by generation: the letter named; by
log-likelihood: acc and acc_norm) · caption: cider, bleu1-4, rougeL, meteor (when Java exists) · vqa: vqa_acc (or
anls / relaxed_acc) · asr: wer · yesno: acc, f1 · code: pass@1 · ifeval: prompt_strict_acc, inst_strict_acc."""
from __future__ import annotations

from typing import Any, Callable, Optional

from .extract import LETTERS, extract_choice, extract_number, extract_yes_no, strip_think
from .items import EvalItem
from .metrics import corpus_metric, item_metric, java_available, rouge_item_scorer
from .stats import bootstrap, score_entry

DEFAULT_METRICS = {
    "qa": ("exact_match", "rougeL", "rouge1", "rouge2", "bleu"),
    "math": ("exact_match",),
    "mcq": ("acc",),
    "caption": ("cider", "bleu1", "bleu2", "bleu3", "bleu4", "rougeL", "meteor"),
    "vqa": ("vqa_acc", "exact_match"),
    "asr": ("wer",),
    "yesno": ("acc", "f1"),
    "code": ("pass@1",),
    "ifeval": ("prompt_strict_acc", "inst_strict_acc"),
}
LOWER_IS_BETTER = {"wer"}
CORPUS_ONLY = {"bleu", "bleu1", "bleu2", "bleu3", "bleu4", "wer", "f1", "inst_strict_acc"}   # recomputed on resamples
CORPUS_WITH_ITEMS = {"cider", "meteor"}                                   # corpus-computed, item scores kept
BINARY = {"exact_match", "contains", "acc", "acc_norm", "pass@1", "prompt_strict_acc"}  # right or wrong: Wilson


# the library each metric imports when its scorer is built (rouge-score imports all of NLTK: about 1.5 s here)
METRIC_LIBRARIES = {"rouge": ("rouge_score.rouge_scorer", "ROUGE"), "bleu": ("sacrebleu", "BLEU"),
                    "wer": ("jiwer", "WER"), "cider": ("pycocoevalcap", "BLEU-1..4 and CIDEr")}


def import_metric_libraries(tasks: list[Any]) -> list[str]:
    """Import the libraries the tasks' generative metrics need, before the model loads: a missing one stops the run
    there, naming its extra, rather than after the answers; and the answers' timing (items/s) counts answering and
    scoring, not these imports. Returns the modules imported."""
    from ..utils.optional import require

    wanted = {METRIC_LIBRARIES[prefix] for task in tasks
              for name in metric_names(task.eval_type, task.benchmark, task.options, loglik=False)
              for prefix in METRIC_LIBRARIES if name.startswith(prefix)}
    for module, purpose in sorted(wanted):
        require(module, "eval", purpose)
    return sorted(module for module, _ in wanted)


def metric_names(eval_type: str, benchmark: Any, options: dict[str, Any], loglik: bool) -> list[str]:
    names = list(options.get("metrics") or (benchmark.metrics if benchmark and benchmark.metrics else ())
                 or DEFAULT_METRICS[eval_type])
    if eval_type == "mcq" and loglik and "acc_norm" not in names:
        names.append("acc_norm")
    if "meteor" in names and (not java_available() or options.get("meteor") is False):
        names.remove("meteor")
    return names


def extract(eval_type: str, item: EvalItem, raw: str, keep_think: bool = False) -> Any:
    text = raw if keep_think else strip_think(raw)
    if eval_type == "math":
        return extract_number(text)
    if eval_type == "mcq":
        index = extract_choice(text, item.choices or [])
        return None if index is None else LETTERS[index]
    if eval_type == "yesno":
        return extract_yes_no(text)
    if eval_type == "vqa":
        return text.strip().splitlines()[0].strip() if text.strip() else ""
    return text


def item_scores(eval_type: str, item: EvalItem, extracted: Any, raw: str, names: list[str],
                rouge: Optional[Callable] = None) -> dict[str, float]:
    """Scores one answer gets on its own (corpus metrics are added later)."""
    scores: dict[str, float] = {}
    refs = item.references
    for name in names:
        if name == "exact_match":
            target = [extract_number(r) or r for r in refs] if eval_type == "math" else refs
            scores[name] = float(extracted is not None and any(str(extracted) == str(t) for t in target)) \
                if eval_type == "math" else item_metric("exact_match")(str(extracted or ""), target)
        elif name == "acc" and eval_type == "mcq":
            scores[name] = float(extracted is not None and extracted == LETTERS[item.answer_index or 0])
        elif name == "acc" and eval_type == "yesno":
            scores[name] = float(extracted == str(refs[0]).strip().lower())
        elif name in ("vqa_acc", "anls", "relaxed_acc", "contains"):
            scores[name] = item_metric(name)(str(extracted or ""), refs)
        elif name.startswith("rouge") and rouge is not None:
            scores[name] = rouge(str(extracted or ""), refs)[name]
        elif name == "pass@1":
            scores[name] = _pass_at_1(item, str(extracted or ""))
        elif name == "prompt_strict_acc":
            followed = _ifeval_followed(item, str(extracted or ""))
            scores[name] = float(all(followed))
            scores["instructions_followed"], scores["instructions"] = float(sum(followed)), float(len(followed))
    return scores


def _pass_at_1(item: EvalItem, answer: str) -> float:
    from .sandbox import completion_code, passes

    program = completion_code(answer, item.meta["prompt"], item.meta["entry_point"])
    return float(passes(program, item.meta["test"], item.meta["entry_point"])[0])


def _ifeval_followed(item: EvalItem, answer: str) -> list[bool]:
    """IFEval's strict checks, from lm-evaluation-harness (needs langdetect and immutabledict too)."""
    from ..utils.optional import require

    utils = require("lm_eval.tasks.ifeval.utils", "lm_eval", "IFEval's instruction checks (also: pip install "
                    "langdetect immutabledict)")
    example = utils.InputExample(0, item.meta["instruction_id_list"], item.meta["prompt"], item.meta["kwargs"])
    return list(utils.test_instruction_following_strict(example, answer).follow_instruction_list)


def rouge_for(names: list[str]) -> Optional[Callable]:
    kinds = [n for n in names if n.startswith("rouge")]
    return rouge_item_scorer(kinds) if kinds else None


def add_corpus_item_scores(names: list[str], records: list[dict[str, Any]]) -> None:
    """CIDEr/METEOR: computed over the corpus, their per-item scores stored on the records."""
    for name in names:
        if name in CORPUS_WITH_ITEMS and records:
            _, per_item = corpus_metric(name).compute([_text(r) for r in records],
                                                      [r["references"] for r in records])
            for record, value in zip(records, per_item or []):
                record["score"][name] = value


def _text(record: dict[str, Any]) -> str:
    return str(record.get("extracted") if record.get("extracted") is not None else "")


def _corpus_value(name: str, records: list[dict[str, Any]]) -> float:
    if name == "f1":
        return _yes_f1(records)
    if name == "inst_strict_acc":
        total = sum(r["score"].get("instructions", 0.0) for r in records)
        return sum(r["score"].get("instructions_followed", 0.0) for r in records) / total if total else 0.0
    value, _ = corpus_metric(name).compute([_text(r) for r in records], [r["references"] for r in records])
    return value


def _yes_f1(records: list[dict[str, Any]]) -> float:
    """F1 of answering 'yes' (POPE's F1)."""
    said = [r.get("extracted") == "yes" for r in records]
    gold = [str(r["references"][0]).strip().lower() == "yes" for r in records]
    tp = sum(s and g for s, g in zip(said, gold))
    fp, fn = sum(s and not g for s, g in zip(said, gold)), sum(g and not s for s, g in zip(said, gold))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def summarize(names: list[str], records: list[dict[str, Any]], seed: int) -> dict[str, dict[str, Any]]:
    """Every metric over these records: value, 95% interval, method, item count, direction."""
    out = {}
    for name in names:
        if name in CORPUS_ONLY:
            value = _corpus_value(name, records)
            resamples = 200 if len(records) <= 2000 else 50
            ci = bootstrap(records, lambda rs, n=name: _corpus_value(n, rs), seed, resamples)
            entry = score_entry([0.0] * len(records), value, ci, "bootstrap (corpus recomputed)")
        else:
            entry = score_entry([r["score"].get(name, 0.0) for r in records], seed=seed, binary=name in BINARY)
        entry["higher_is_better"] = name not in LOWER_IS_BETTER
        out[name] = entry
    return out


def by_subset(names: list[str], records: list[dict[str, Any]], seed: int) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(record.get("subset") or "", []).append(record)
    if len(groups) <= 1:
        return {}
    return {subset: summarize(names, group, seed) for subset, group in sorted(groups.items())}


def macro_average(subsets: dict[str, dict[str, Any]], primary: str) -> Optional[float]:
    """Mean of the subsets' primary scores (MMLU-style reports give both this and the item average)."""
    values = [s[primary]["value"] for s in subsets.values() if s.get(primary, {}).get("value") is not None]
    return round(sum(values) / len(values), 6) if values else None


"""Metrics from the metric libraries, computed offline: sacrebleu (BLEU), rouge-score (ROUGE), pycocoevalcap
(BLEU-1..4 and CIDEr-D in pure Python; METEOR through its bundled jar where Java exists), jiwer (WER).

A metric is per item (its score is the mean of item scores) or per corpus (BLEU, WER: the score is computed on the
whole set, and its interval by re-computing it on bootstrap resamples of the items)."""
from __future__ import annotations

import re
import shutil
import string
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from ..utils.optional import require
from .extract import normalize

Refs = Sequence[str]


@dataclass(frozen=True)
class CorpusMetric:
    name: str
    compute: Callable[[list[str], list[Refs]], tuple[float, Optional[list[float]]]]  # (score, item scores|None)
    higher_is_better: bool = True


# ---- per-item ------------------------------------------------------------------------------------------
def exact_match(prediction: str, references: Refs) -> float:
    said = normalize(prediction)
    return float(any(said == normalize(r) for r in references))


def contains(prediction: str, references: Refs) -> float:
    """1 when the answer contains a reference (both normalised as for exact match, whole words), else 0: for
    free-form answers that must state a fact ("my name is Swifty")."""
    said = f" {normalize(prediction)} "
    return float(any(normalize(r) and f" {normalize(r)} " in said for r in references))


def vqa_accuracy(prediction: str, answers: Refs) -> float:
    """The VQA challenge's soft accuracy: min(#annotators who gave the answer / 3, 1), averaged over the ten
    leave-one-annotator-out subsets (with fewer than 10 answers, over all of them)."""
    said = _vqa_norm(prediction)
    given = [_vqa_norm(a) for a in answers]
    if not given:
        return 0.0
    if len(given) == 1:
        return float(said == given[0])
    total = 0.0
    for i in range(len(given)):
        others = given[:i] + given[i + 1:]
        total += min(1.0, sum(a == said for a in others) / 3)
    return total / len(given)


def _vqa_norm(text: str) -> str:
    text = (text or "").lower().replace("\n", " ").strip()
    text = re.sub(r"(?<=\d),(?=\d)", "", text)
    text = "".join(" " if ch in string.punctuation and ch not in "'" else ch for ch in text)
    words = [w for w in text.split() if w not in ("a", "an", "the")]
    numbers = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
               "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
    return " ".join(numbers.get(w, w) for w in words)


def anls(prediction: str, answers: Refs, threshold: float = 0.5) -> float:
    """DocVQA's average normalised Levenshtein similarity (0 below the threshold), best over the answers."""
    from rapidfuzz.distance import Levenshtein

    said = " ".join((prediction or "").lower().split())
    best = 0.0
    for answer in answers:
        gold = " ".join(str(answer).lower().split())
        similarity = 1 - Levenshtein.normalized_distance(said, gold)
        best = max(best, similarity if similarity >= threshold else 0.0)
    return best


def relaxed_accuracy(prediction: str, answers: Refs, tolerance: float = 0.05) -> float:
    """ChartQA: numbers within 5% of the answer count as right; other answers must match exactly."""
    said = (prediction or "").strip().rstrip(".").replace("%", "")
    for answer in answers:
        gold = str(answer).strip().rstrip(".").replace("%", "")
        try:
            target, value = float(gold), float(said)
            if (target == 0 and value == 0) or (target != 0 and abs(value - target) / abs(target) <= tolerance):
                return 1.0
        except ValueError:
            if said.lower() == gold.lower():
                return 1.0
    return 0.0


def rouge_item_scorer(kinds: Sequence[str] = ("rouge1", "rouge2", "rougeL")) -> Callable[[str, Refs], dict]:
    """F-measures of ROUGE (rouge-score, Porter stemming), best over the references."""
    rouge_scorer = require("rouge_score.rouge_scorer", "eval", "ROUGE")
    scorer = rouge_scorer.RougeScorer(list(kinds), use_stemmer=True)

    def score(prediction: str, references: Refs) -> dict[str, float]:
        best = {k: 0.0 for k in kinds}
        for reference in references:
            result = scorer.score(reference, prediction or "")
            for k in kinds:
                best[k] = max(best[k], result[k].fmeasure)
        return best

    return score


# ---- per-corpus ----------------------------------------------------------------------------------------
def sacre_bleu(predictions: list[str], references: list[Refs]) -> tuple[float, Optional[list[float]]]:
    """Corpus BLEU (0-100) with sacrebleu's standard 13a tokenisation; references may differ in number."""
    sacrebleu = require("sacrebleu", "eval", "BLEU")
    width = max((len(r) for r in references), default=1)
    streams = [[(list(r) + [list(r)[0]] * width)[i] if r else "" for r in references] for i in range(width)]
    return sacrebleu.corpus_bleu(list(predictions), streams).score, None


def word_error_rate(predictions: list[str], references: list[Refs]) -> tuple[float, Optional[list[float]]]:
    """jiwer's corpus WER (all word errors over all reference words), lower is better; first reference."""
    jiwer = require("jiwer", "eval", "WER")
    refs = [_words(r[0]) if r else "" for r in references]
    hyps = [_words(p) for p in predictions]
    pairs = [(r, h) for r, h in zip(refs, hyps) if r]
    if not pairs:
        return 0.0, None
    return float(jiwer.wer([r for r, _ in pairs], [h for _, h in pairs])), None


def _words(text: str) -> str:
    """Lower case, punctuation dropped (apostrophes kept), single spaces: the usual WER normalisation."""
    return " ".join(re.sub(r"[^\w\s']", " ", (text or "").lower()).split())


def _coco_inputs(predictions: list[str], references: list[Refs]) -> tuple[dict, dict]:
    tok = lambda s: " ".join(re.findall(r"[a-z0-9']+", (s or "").lower())) or "<empty>"  # noqa: E731
    gts = {i: [tok(r) for r in refs] or ["<empty>"] for i, refs in enumerate(references)}
    res = {i: [tok(p)] for i, p in enumerate(predictions)}
    return gts, res


def coco_bleu(n: int) -> CorpusMetric:
    def compute(predictions: list[str], references: list[Refs]) -> tuple[float, Optional[list[float]]]:
        require("pycocoevalcap", "eval", "BLEU-1..4 and CIDEr")
        from pycocoevalcap.bleu.bleu_scorer import BleuScorer

        scorer = BleuScorer(n=4)
        gts, res = _coco_inputs(predictions, references)
        for i in gts:
            scorer += (res[i][0], gts[i])
        score, _ = scorer.compute_score(option="closest", verbose=0)
        return float(score[n - 1]), None

    return CorpusMetric(f"bleu{n}", compute)


def cider(predictions: list[str], references: list[Refs]) -> tuple[float, Optional[list[float]]]:
    """CIDEr-D (pycocoevalcap); a perfect caption scores 10 on its scale."""
    require("pycocoevalcap", "eval", "BLEU-1..4 and CIDEr")
    from pycocoevalcap.cider.cider import Cider

    gts, res = _coco_inputs(predictions, references)
    score, items = Cider().compute_score(gts, res)
    return float(score), [float(x) for x in items]


def meteor(predictions: list[str], references: list[Refs]) -> tuple[float, Optional[list[float]]]:
    """METEOR 1.5 through pycocoevalcap's bundled jar (needs Java)."""
    require("pycocoevalcap", "eval", "METEOR")
    from pycocoevalcap.meteor.meteor import Meteor

    gts, res = _coco_inputs(predictions, references)
    scorer = Meteor()
    try:
        score, items = scorer.compute_score(gts, res)
    finally:
        scorer.close() if hasattr(scorer, "close") else None
    return float(score), [float(x) for x in items]


def java_available() -> bool:
    return shutil.which("java") is not None


def corpus_metric(name: str) -> CorpusMetric:
    table = {"bleu": CorpusMetric("bleu", sacre_bleu), "wer": CorpusMetric("wer", word_error_rate, False),
             "cider": CorpusMetric("cider", cider), "meteor": CorpusMetric("meteor", meteor),
             **{f"bleu{n}": coco_bleu(n) for n in (1, 2, 3, 4)}}
    return table[name]


def item_metric(name: str) -> Callable[[str, Refs], Any]:
    table: dict[str, Callable[[str, Refs], Any]] = {"exact_match": exact_match, "contains": contains,
                                                    "vqa_acc": vqa_accuracy, "anls": anls,
                                                    "relaxed_acc": relaxed_accuracy}
    return table[name]

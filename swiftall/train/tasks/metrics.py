"""Evaluation metrics of the tasks: accuracy and macro-F1 (or MSE and Pearson) for seq_cls; recall@1/5/10, MRR and
nDCG@10 for embedding (each validation query ranks the pool of every validation positive and negative) and
reranker (each query ranks its own positives and negatives)."""
from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np


def classification_metrics(logits: np.ndarray, labels: np.ndarray, problem_type: str) -> dict[str, float]:
    if problem_type == "regression":
        pred, gold = logits.reshape(-1), labels.reshape(-1).astype(float)
        pearson = float(np.corrcoef(pred, gold)[0, 1]) if len(pred) > 1 and pred.std() > 0 and gold.std() > 0 else 0.0
        return {"mse": float(((pred - gold) ** 2).mean()), "pearson": pearson}
    if problem_type == "multi_label_classification":
        pred, gold = (logits > 0).astype(int), labels.astype(int)
        f1 = [_f1(pred[:, c] == 1, gold[:, c] == 1) for c in range(gold.shape[1])]
        return {"accuracy": float((pred == gold).all(1).mean()), "macro_f1": float(np.mean(f1))}
    pred = logits.argmax(-1)
    classes = range(logits.shape[-1])
    return {"accuracy": float((pred == labels).mean()),
            "macro_f1": float(np.mean([_f1(pred == c, labels == c) for c in classes if (labels == c).any()
                                       or (pred == c).any()]))}


def _f1(pred: np.ndarray, gold: np.ndarray) -> float:
    tp = float((pred & gold).sum())
    return 0.0 if tp == 0 else 2 * tp / (float(pred.sum()) + float(gold.sum()))


def ranking_metrics(rankings: Sequence[tuple[Sequence[float], Sequence[bool]]]) -> dict[str, float]:
    """rankings: one (scores, relevant) per query, over that query's candidates."""
    out: dict[str, list[float]] = {"recall@1": [], "recall@5": [], "recall@10": [], "mrr": [], "ndcg@10": []}
    for scores, relevant in rankings:
        order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
        hits = np.asarray(relevant, dtype=bool)[order]
        n_rel = int(hits.sum())
        if n_rel == 0:
            continue
        for k in (1, 5, 10):
            out[f"recall@{k}"].append(hits[:k].sum() / n_rel)
        out["mrr"].append(1.0 / (int(np.argmax(hits)) + 1))
        dcg = sum(1.0 / math.log2(i + 2) for i in np.nonzero(hits[:10])[0])
        ideal = sum(1.0 / math.log2(i + 2) for i in range(min(n_rel, 10)))
        out["ndcg@10"].append(dcg / ideal)
    return {k: float(np.mean(v)) if v else 0.0 for k, v in out.items()}


def embedding_rankings(query_vecs: np.ndarray, pool_vecs: np.ndarray, relevant: list[set[int]]) -> list[tuple]:
    sims = query_vecs @ pool_vecs.T
    return [(sims[i], [j in relevant[i] for j in range(pool_vecs.shape[0])]) for i in range(len(relevant))]


def retrieval_pool(samples: list[dict[str, Any]]) -> tuple[list, list[set[int]]]:
    """Distinct documents of every sample (positives and negatives: token ids, or media items, the same document
    whichever row gives it), and each sample's relevant ones."""
    index: dict[Any, int] = {}
    docs: list = []
    relevant: list[set[int]] = []
    for s in samples:
        rel = set()
        for ids, is_pos in [*[(p, True) for p in s["positives"]], *[(n, False) for n in s["negatives"]]]:
            key = _doc_key(ids)
            if key not in index:
                index[key] = len(docs)
                docs.append(ids if isinstance(ids, dict) else list(ids))
            if is_pos:
                rel.add(index[key])
        relevant.append(rel)
    return docs, relevant


def _doc_key(doc: Any) -> Any:
    if isinstance(doc, dict):  # a media item: its text and media, not the row it came from
        return json.dumps({k: v for k, v in doc.items() if k != "source"}, sort_keys=True, default=str)
    return tuple(doc)

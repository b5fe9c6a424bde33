"""The learning proofs of --task_type seq_cls|embedding|reranker on the embedded SmolLM2-135M-Instruct (LoRA, a
few steps on generated data; slow on a CPU): each metric is measured on held-out rows before and after training."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tasks_data import NAMES, PLACES, classification_rows, paraphrase_rows, retrieval_rows

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
torch = pytest.importorskip("torch")


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _sft(smol_dir, train, val, out, **kw):
    from swiftall import sft_main

    args = {"model": str(smol_dir), "dataset": [train], "val_dataset": [val], "output_dir": str(out),
            "per_device_train_batch_size": 8, "learning_rate": 5e-4, "report_to": ["none"], "save_steps": 1000,
            "eval_steps": 1000, "logging_steps": 2, "seed": 0}
    return sft_main({**args, **kw})


def test_seq_cls_hidden_rule_from_chance_to_90_percent(smol_dir, tmp_path):
    """label 1 = the sentence holds a sentiment word, 0 = only neutral words; held-out sentences are new
    noun/word combinations."""
    from swiftall import InferEngine

    val_rows = classification_rows(40, seed=1)
    summary = _sft(smol_dir, _write(tmp_path / "train.jsonl", classification_rows(160, seed=0)),
                   _write(tmp_path / "val.jsonl", val_rows), tmp_path / "run", task_type="seq_cls",
                   num_labels=2, max_steps=20)
    majority = max(np.mean([r["label"] for r in val_rows]), 1 - np.mean([r["label"] for r in val_rows]))
    assert summary["eval_before"]["eval_accuracy"] <= majority + 0.05  # the fresh head: chance
    assert summary["eval"]["eval_accuracy"] >= 0.9
    results = InferEngine(adapters=[summary["output_dir"]]).classify([r["text"] for r in val_rows])
    served = np.mean([int(r["label"]) == row["label"] for r, row in zip(results, val_rows)])
    assert served == pytest.approx(summary["eval"]["eval_accuracy"])


def _recall_at_1(engine, rows):
    queries = np.array(engine.embed([r["query"] for r in rows]))
    docs = [r["positive"][0] for r in rows]                       # the pool: every held-out answer
    pool = np.array(engine.embed(docs))
    return float(np.mean((queries @ pool.T).argmax(1) == np.arange(len(rows))))


def test_embedding_training_raises_recall_at_1_by_30_points(smol_dir, tmp_path):
    """Questions that paraphrase a person's job ("Who bakes bread in Paris?") against answers that name it ("... works
    as a baker and has a home in Paris."), four places shared by 16 held-out people: the base's last-token states
    match the place, not the paraphrase. Training rows use other people and other places. Measured (30 Nov, idle,
    50 s): recall@1 0.250 -> 0.875, served and in the run's own evaluation alike."""
    from swiftall import InferEngine

    val_rows = paraphrase_rows(NAMES[24:40], seed=2, places=PLACES[:4])
    base = _recall_at_1(InferEngine(str(smol_dir), task_type="embedding"), val_rows)
    summary = _sft(smol_dir, _write(tmp_path / "train.jsonl", paraphrase_rows(NAMES[:24], seed=1, places=PLACES[4:])),
                   _write(tmp_path / "val.jsonl", val_rows), tmp_path / "run", task_type="embedding",
                   max_steps=15, max_negative_samples=1)
    trained = _recall_at_1(InferEngine(adapters=[summary["output_dir"]]), val_rows)
    print(f"recall@1 on {len(val_rows)} held-out queries: base {base:.3f} -> trained {trained:.3f}; "
          f"run's eval {summary['eval_before']['eval_recall@1']:.3f} -> {summary['eval']['eval_recall@1']:.3f}")
    assert summary["eval_before"]["eval_recall@1"] == pytest.approx(base, abs=0.07)
    assert trained >= base + 0.30


@pytest.mark.parametrize("task_type, floor", [("reranker", 0.85), ("generative_reranker", 0.7)])
def test_reranker_mrr_rises_on_held_out_queries(smol_dir, tmp_path, task_type, floor):
    """reranker: a fresh score head; generative_reranker: the chat model's own yes/no judgement (no new head),
    measured (30 Nov, load 9-15, 48 min): MRR 0.500 -> 0.802 in the same 12 steps."""
    summary = _sft(smol_dir, _write(tmp_path / "train.jsonl", retrieval_rows(NAMES[:24], seed=1)),
                   _write(tmp_path / "val.jsonl", retrieval_rows(NAMES[24:40], seed=2, negatives=3)),
                   tmp_path / "run", task_type=task_type, max_steps=12, max_negative_samples=2)
    before, after = summary["eval_before"]["eval_mrr"], summary["eval"]["eval_mrr"]
    print(f"{task_type} MRR on held-out queries: {before:.3f} -> {after:.3f}")
    assert after >= before + 0.15 and after >= floor

"""--task_type generative_reranker (ms-swift's name): a chat model scores a (query, document) pair by its own "yes"
minus "no" logit after a judging prompt. On the tiny random llama with SmolLM2's tokenizer and chat template: the
score is exactly that logit difference whatever the padding, a run trains, serves and merges with the same scores."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tasks_data import NAMES, retrieval_rows

torch = pytest.importorskip("torch")

DOCS = ["Nina works as a poet.", "Marco has a home in Lima and works as a judge in the old court.", "Long."]


def _by_hand(model, tokenizer, query, doc):
    """P(yes) against no, from a plain forward of the prompt the chat template gives (no padding)."""
    from swiftall.models.tasks import JUDGE_SYSTEM

    messages = [{"role": "system", "content": JUDGE_SYSTEM},
                {"role": "user", "content": f"<Query>: {query}\n<Document>: {doc}"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    yes, no = (tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("yes", "no"))
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, -1].float()
    return torch.sigmoid(logits[yes] - logits[no]).item()


@pytest.fixture(scope="module")
def run(tiny_dir, tmp_path_factory):
    from swiftall import sft_main

    root = tmp_path_factory.mktemp("gen-rr")
    for name, rows in (("train", retrieval_rows(NAMES[:20], 1)), ("val", retrieval_rows(NAMES[20:30], 2))):
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return sft_main({"model": str(tiny_dir), "dataset": [str(root / "train.jsonl")],
                     "val_dataset": [str(root / "val.jsonl")], "output_dir": str(root / "run"),
                     "task_type": "generative_reranker", "task_loss_type": "listwise", "max_negative_samples": 1,
                     "max_steps": 2, "per_device_train_batch_size": 4, "learning_rate": 1e-2, "report_to": ["none"],
                     "logging_steps": 1, "save_steps": 100})


def test_base_scores_are_the_yes_minus_no_logit_whatever_the_padding(tiny_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from swiftall import InferEngine

    engine = InferEngine(str(tiny_dir), task_type="generative_reranker")
    ranked = engine.rerank("Tell me about Nina.", DOCS)            # three lengths in one padded batch
    model = AutoModelForCausalLM.from_pretrained(str(tiny_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_dir))
    expected = [_by_hand(model, tokenizer, "Tell me about Nina.", d) for d in DOCS]
    got = [0.0] * 3
    for r in ranked:
        got[r["index"]] = r["relevance_score"]
    assert got == pytest.approx(expected, abs=1e-5)
    assert len(set(round(g, 6) for g in got)) == 3  # the tiny model does not give one score to everything


def test_run_trains_evaluates_serves_and_merges(run, tiny_dir):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from swiftall import InferEngine, export_main

    out = run["output_dir"]
    assert run["global_step"] == 2 and np.isfinite(run["train_loss"])
    assert {"eval_mrr", "eval_ndcg@10"} <= set(run["eval"]) and run["eval"] != run["eval_before"]
    spec = json.loads(open(f"{out}/swiftall_task.json").read())
    assert (spec["task_type"], spec["reranker_head"]) == ("reranker", "yes_no")
    assert not any("score" in k for k in load_file(f"{out}/adapter_model.safetensors")), "no classifier head"
    served = {r["index"]: r["relevance_score"] for r in InferEngine(adapters=[out]).rerank("Tell me about Nina.",
                                                                                            DOCS)}
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_dir))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_dir)), out).eval()
    assert [served[i] for i in range(3)] == pytest.approx(
        [_by_hand(model, tokenizer, "Tell me about Nina.", d) for d in DOCS], abs=1e-5)
    merged = export_main(["--adapters", out, "--merge_lora", "true"])
    again = {r["index"]: r["relevance_score"] for r in InferEngine(str(merged)).rerank("Tell me about Nina.", DOCS)}
    assert [again[i] for i in range(3)] == pytest.approx([served[i] for i in range(3)], abs=1e-5)


def test_reranker_head_belongs_to_rerankers(tiny_dir, write_jsonl, tmp_path):
    from swiftall import sft_main
    from swiftall.utils.errors import SwiftallError

    data = write_jsonl([{"query": "q", "positive": ["p"]}])
    with pytest.raises(SwiftallError, match="--reranker_head is for --task_type reranker, not embedding"):
        sft_main({"model": str(tiny_dir), "dataset": [str(data)], "output_dir": str(tmp_path / "r"),
                  "task_type": "embedding", "reranker_head": "yes_no"})
    assert not (tmp_path / "r").exists()

"""--task_type seq_cls|embedding|reranker on a tiny random llama: bad input stops before the model loads, each task
trains, is served (embed/classify/rerank, HTTP routes) and exports (transformers, sentence-transformers). The
learning proofs on the embedded model are in test_tasks_learn.py."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tasks_data import NAMES, classification_rows, retrieval_rows

torch = pytest.importorskip("torch")

FAST = {"max_steps": 2, "per_device_train_batch_size": 4, "report_to": ["none"], "logging_steps": 1,
        "save_steps": 100, "learning_rate": 1e-3}


def sft(model, data, out, **kw):
    from swiftall import sft_main

    return sft_main({"model": str(model), "dataset": [str(data)], "output_dir": str(out), **FAST, **kw})


# ---- bad input: clear messages, nothing loaded, no run folder ------------------------------------------
@pytest.mark.parametrize("rows, flags, message", [
    ([{"text": "a", "label": 0}, {"text": "b", "label": 3}], {"task_type": "seq_cls", "num_labels": 2},
     "data.jsonl:2: field 'label' is 3, out of range for --num_labels 2"),
    ([{"text": "a", "label": "maybe"}], {"task_type": "seq_cls", "label_names": ["no", "yes"]},
     "data.jsonl:1: field 'label' must be a class number 0..1; or one of the --label_names no, yes"),
    ([{"text": "a", "label": 1}], {"task_type": "seq_cls", "num_labels": 2, "problem_type": "multi_label"},
     "data.jsonl:1: field 'label': --problem_type multi_label needs a list of classes"),
    ([{"query": "q", "positive": ["p"]}, {"query": "q2", "negative": ["n"]}], {"task_type": "embedding"},
     "data.jsonl:2: no positive: give 'positive'"),
    ([{"query": "q", "positive": []}], {"task_type": "reranker"}, "data.jsonl:1: no positive"),
    ([{"query": "q", "positive": ["p"]}], {"task_type": "embedding", "mrl_dims": "16,64"},
     "--mrl_dims 64 is larger than the model's hidden size 32"),
    ([{"query": "q", "positive": ["p"]}], {"task_type": "embedding", "task_loss_type": "listwise"},
     "--task_loss_type listwise is a loss of --task_type reranker, not of --task_type embedding"),
    ([{"query": "q", "positive": ["p"]}], {"task_type": "reranker", "task_loss_type": "infonce"},
     "--task_loss_type infonce is a loss of --task_type embedding, not of --task_type reranker"),
    ([{"text": "a", "label": 0}], {"task_type": "seq_cls"}, "--task_type seq_cls: give --num_labels N"),
    ([{"query": "q", "positive": ["p"]}], {"task_type": "reranker", "task_loss_type": "listwise"},
     "no training row has a 'negative'"),
])
def test_bad_input_stops_before_the_model_loads(tiny_dir, write_jsonl, tmp_path, monkeypatch, rows, flags, message):
    import swiftall.pipelines.sft_tasks as pipeline
    from swiftall.utils.errors import SwiftallError

    def no_load(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(pipeline, "load_task_model", no_load)
    with pytest.raises(SwiftallError) as err:
        sft(tiny_dir, write_jsonl(rows), tmp_path / "run", **flags)
    assert message in str(err.value)
    assert not (tmp_path / "run").exists()


def test_cli_names_the_bad_row(tiny_dir, write_jsonl, tmp_path, capsys):
    from swiftall.cli.main import main

    data = write_jsonl([{"text": "fine", "label": 1}, {"text": "bad", "label": 7}])
    code = main(["sft", "--model", str(tiny_dir), "--task_type", "seq_cls", "--num_labels", "2", "--dataset",
                 str(data), "--output_dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code != 0 and f"{data}:2: field 'label' is 7, out of range" in err and "Traceback" not in err


# ---- losses and metrics --------------------------------------------------------------------------------
def test_ranking_metrics_by_hand():
    from swiftall.train.tasks.metrics import ranking_metrics

    m = ranking_metrics([([0.9, 0.5, 0.1], [False, True, False]),   # relevant at rank 2
                         ([0.2, 0.8], [False, True])])               # relevant at rank 1
    assert m["recall@1"] == 0.5 and m["recall@5"] == 1.0 and m["mrr"] == pytest.approx(0.75)
    assert m["ndcg@10"] == pytest.approx((1 / np.log2(3) + 1) / 2)


def test_infonce_in_batch_negatives_and_temperature():
    import torch.nn.functional as F

    from swiftall.train.tasks.losses import infonce

    a = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    docs = F.normalize(torch.tensor([[1.0, 0.1], [0.9, 0.5], [0.1, 1.0]]), dim=-1)  # row 0: pos, neg; row 1: pos
    row, pos = torch.tensor([0, 0, 1]), torch.tensor([True, False, True])
    own = infonce(a, docs, row, pos, 0.1, in_batch=False)
    shared = infonce(a, docs, row, pos, 0.1, in_batch=True)
    assert shared > own  # the other row's documents are negatives too
    assert infonce(a, docs, row, pos, 1.0, in_batch=True) > shared  # a higher temperature: flatter, higher loss


# ---- each task trains, serves and exports ----------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tiny_dir, tmp_path_factory):
    """One short run per task on the tiny llama (module-wide: training is the slow part)."""
    root = tmp_path_factory.mktemp("task-runs")

    def write(name, rows):
        path = root / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path

    cls_val, ret_val = write("cls_val.jsonl", classification_rows(12, 1)), write("ret_val.jsonl",
                                                                                  retrieval_rows(NAMES[20:30], 2))
    out = {}
    out["seq_cls"] = sft(tiny_dir, write("cls.jsonl", classification_rows(24, 0)), root / "cls", task_type="seq_cls",
                         label_names=["neutral", "sentiment"], val_dataset=[str(cls_val)])
    ret = write("ret.jsonl", retrieval_rows(NAMES[:20], 1))
    out["embedding"] = sft(tiny_dir, ret, root / "emb", task_type="embedding", mrl_dims="8,16",
                           val_dataset=[str(ret_val)])
    out["reranker"] = sft(tiny_dir, ret, root / "rr", task_type="reranker", task_loss_type="listwise",
                          max_negative_samples=1, val_dataset=[str(ret_val)])
    out["texts"] = ["The game was superb.", "The class was long.", "Tell me about Nina."]
    return out


def test_runs_report_task_metrics(runs):
    assert set(runs["seq_cls"]["eval"]) >= {"eval_accuracy", "eval_macro_f1"}
    for task in ("embedding", "reranker"):
        assert set(runs[task]["eval"]) >= {"eval_recall@1", "eval_recall@10", "eval_mrr", "eval_ndcg@10"}
        assert runs[task]["global_step"] == 2 and np.isfinite(runs[task]["train_loss"])
    logged = [json.loads(line) for line in open(f"{runs['embedding']['output_dir']}/logging.jsonl")]
    assert any("eval_mrr" in row for row in logged)


def test_seq_cls_head_is_saved_with_the_adapter_and_exports_to_transformers(runs, capsys):
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from swiftall import InferEngine, export_main
    from swiftall.pipelines.infer import infer_main

    run = runs["seq_cls"]["output_dir"]
    saved = load_file(f"{run}/adapter_model.safetensors")
    assert any("score" in k for k in saved), "the classification head must be trained and saved (modules_to_save)"
    engine = InferEngine(adapters=[run])
    results = engine.classify(runs["texts"])
    assert all(r["label"] in ("neutral", "sentiment") and sum(r["scores"]) == pytest.approx(1, abs=1e-5)
               for r in results)
    with pytest.raises(NotImplementedError, match="seq_cls model: it does not generate"):
        engine.infer(["hi"])
    infer_main({"adapters": [run], "query": runs["texts"][0]})
    assert f"label {results[0]['label']} (score {results[0]['score']:.4f})" in capsys.readouterr().out

    merged = export_main(["--adapters", run, "--merge_lora", "true"])
    model = AutoModelForSequenceClassification.from_pretrained(merged).eval()
    tokenizer = AutoTokenizer.from_pretrained(merged)
    assert model.config.id2label == {0: "neutral", 1: "sentiment"}
    with torch.no_grad():
        probs = model(**tokenizer(runs["texts"][:1], return_tensors="pt")).logits.softmax(-1)[0]
    assert probs.tolist() == pytest.approx(results[0]["scores"], abs=1e-5)


def test_embedding_merged_equals_adapter_differs_from_base_and_loads_in_sentence_transformers(runs, tiny_dir):
    from swiftall import InferEngine, export_main

    run, texts = runs["embedding"]["output_dir"], runs["texts"]
    adapter = np.array(InferEngine(adapters=[run]).embed(texts))
    base = np.array(InferEngine(str(tiny_dir), task_type="embedding").embed(texts))
    merged_dir = export_main(["--adapters", run, "--merge_lora", "true"])
    merged = np.array(InferEngine(str(merged_dir)).embed(texts))
    assert np.abs(merged - adapter).max() < 1e-5
    assert np.abs(merged - base).max() > 1e-3, "the merged model must not be the base model"
    assert np.linalg.norm(merged, axis=1) == pytest.approx([1, 1, 1], abs=1e-5)
    short = np.array(InferEngine(adapters=[run]).embed(texts, dimensions=8))
    assert short.shape == (3, 8) and np.linalg.norm(short, axis=1) == pytest.approx([1, 1, 1], abs=1e-5)
    st = pytest.importorskip("sentence_transformers")
    vectors = st.SentenceTransformer(str(merged_dir), device="cpu").encode(texts)
    assert np.abs(vectors - merged).max() < 1e-4


def test_reranker_orders_documents(runs, write_jsonl, tmp_path):
    from swiftall import InferEngine
    from swiftall.pipelines.infer import infer_main

    engine = InferEngine(adapters=[runs["reranker"]["output_dir"]])
    docs = ["Nina works as a poet.", "Marco has a home in Lima.", "The game was long."]
    ranked = engine.rerank("Tell me about Nina.", docs, top_n=2)
    assert len(ranked) == 2 and {r["index"] for r in ranked} <= {0, 1, 2}
    scores = [r["relevance_score"] for r in engine.rerank("Tell me about Nina.", docs)]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    with pytest.raises(Exception, match="reranker model; embed needs an embedding model"):
        engine.embed(["x"])
    rows = write_jsonl([{"query": "Tell me about Nina.", "documents": docs, "id": 7}])
    written = infer_main({"adapters": [runs["reranker"]["output_dir"]], "val_dataset": [str(rows)],
                          "result_path": str(tmp_path / "out.jsonl")})
    saved = [json.loads(line) for line in open(tmp_path / "out.jsonl")]
    assert saved == written and saved[0]["id"] == 7
    assert [r["index"] for r in saved[0]["results"]] == [r["index"] for r in engine.rerank("Tell me about Nina.", docs)]


# ---- deploy: /v1/embeddings (OpenAI client), /v1/rerank, /v1/classify ------------------------------------
def _serve(adapter):
    from swiftall.pipelines.deploy import build_app, prepare_deploy_config
    from swiftall.serve.server import ServerThread

    app, _ = build_app(prepare_deploy_config({"adapters": [adapter], "served_model_name": "m"}))
    return ServerThread(app)


def test_deploy_embeddings_with_the_openai_client(runs):
    openai = pytest.importorskip("openai")
    from swiftall import InferEngine

    run, texts = runs["embedding"]["output_dir"], runs["texts"][:2]
    expected = np.array(InferEngine(adapters=[run]).embed(texts, dimensions=8))
    with _serve(run) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0, timeout=120)
        got = client.embeddings.create(model="m", input=texts, dimensions=8)  # the client asks for base64
        floats = client.embeddings.create(model="m", input=texts, encoding_format="float")
    vectors = np.array([d.embedding for d in sorted(got.data, key=lambda d: d.index)])
    assert vectors.shape == (2, 8) and np.abs(vectors - expected).max() < 1e-5
    assert len(floats.data[0].embedding) == 32 and got.usage.prompt_tokens > 0


def test_deploy_rerank_and_classify_routes(runs):
    import httpx

    docs = ["Nina works as a poet.", "The game was long.", "Marco has a home in Lima."]
    with _serve(runs["reranker"]["output_dir"]) as server:
        r = httpx.post(server.url + "/v1/rerank", json={"query": "Tell me about Nina.", "documents": docs,
                                                        "top_n": 2, "return_documents": True}, timeout=120)
        wrong = httpx.post(server.url + "/v1/classify", json={"input": "x"}, timeout=120)
        chat = httpx.post(server.url + "/v1/chat/completions", timeout=120,
                          json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 2 and results[0]["relevance_score"] >= results[1]["relevance_score"]
    assert results[0]["document"]["text"] == docs[results[0]["index"]]
    assert wrong.status_code == 400 and "classify needs a seq_cls model" in wrong.json()["error"]["message"]
    assert chat.status_code >= 400 and "does not generate" in chat.text
    with _serve(runs["seq_cls"]["output_dir"]) as server:
        c = httpx.post(server.url + "/v1/classify", json={"model": "m", "input": ["The game was superb.", "x"]},
                       timeout=120)
    assert c.status_code == 200, c.text
    data = c.json()["data"]
    assert [d["index"] for d in data] == [0, 1] and all(d["label"] in ("neutral", "sentiment") for d in data)
    assert all(d["num_classes"] == 2 and sum(d["probs"]) == pytest.approx(1, abs=1e-5) for d in data)

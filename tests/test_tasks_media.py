"""--task_type embedding with images on a tiny random Qwen2-VL (GME-style): an image item's vector depends on its
image, text and image items batch together as each alone, bad media rows stop before the model loads (file:line and
field; a text-only model is refused), a short LoRA run learns and evaluates media rows, its merged folder gives the
adapter's vectors, and /v1/embeddings takes vLLM's chat form with image parts."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

QUESTION = "What is in this picture?"


@pytest.fixture(scope="module")
def vl(smol_dir, tmp_path_factory):
    """The tiny Qwen2-VL folder, six distinct images, and the folder they lie in. Its weights are drawn at std 0.1
    (the default 0.02 makes every item's hidden states nearly alike, so InfoNCE can only flatten to uniform)."""
    from fixtures_mm import qwen2_vl, redraw_qwen2_vl, write_image

    root = tmp_path_factory.mktemp("emb-vl")
    folder = redraw_qwen2_vl(qwen2_vl(smol_dir, root / "model"), 0.1)
    images = [str(write_image(root / f"img{i}.png", (56, 56), seed=i)) for i in range(6)]
    return folder, images, root


@pytest.fixture(scope="module")
def base(vl):
    from swiftall import InferEngine

    return InferEngine(str(vl[0]), task_type="embedding")


def image_item(image, text=QUESTION):
    return {"text": text, "images": [image]}


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def sft(model, data, out, **kw):
    from swiftall import sft_main

    args = {"model": str(model), "dataset": [str(data)], "output_dir": str(out), "task_type": "embedding",
            "max_steps": 2, "per_device_train_batch_size": 4, "report_to": ["none"], "logging_steps": 1,
            "save_steps": 1000, "learning_rate": 1e-3}
    return sft_main({**args, **kw})


# ---- inference: the image decides the vector; batching changes nothing ---------------------------------
def test_an_image_items_vector_depends_on_its_image(base, vl):
    _, images, _ = vl
    a, b, a_again, text_only = np.array(base.embed([image_item(images[0]), image_item(images[1]),
                                                    image_item(images[0]), QUESTION]))
    assert np.abs(a - a_again).max() < 1e-6
    assert np.abs(a - b).max() > 1e-4, "two different images gave the same vector"
    assert np.abs(a - text_only).max() > 1e-4, "the image was ignored"
    assert np.linalg.norm(a) == pytest.approx(1, abs=1e-5)
    # the same item as OpenAI content parts and as a tagged message list
    parts = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": images[0]}},
                                          {"type": "text", "text": QUESTION}]}]
    tagged = {"messages": [{"role": "user", "content": "<image>" + QUESTION}], "images": [images[0]]}
    for vector in base.embed([parts, tagged]):
        assert np.abs(np.array(vector) - a).max() < 1e-5


def test_a_batch_of_text_image_and_video_items_equals_each_alone(base, vl):
    from fixtures_mm import write_gif

    _, images, root = vl
    video = str(write_gif(root / "clip.gif"))
    items = ["A plain sentence about nothing in particular.", image_item(images[2], "red"),
             {"messages": [{"role": "user", "content": "<image> next to <image>"}], "images": images[3:5]},
             "short", {"text": "What happens?", "videos": [video]}, image_item(images[5])]
    together = np.array(base.embed(items))
    alone = np.array([base.embed([item])[0] for item in items])
    assert together.shape == (6, 32) and np.abs(together - alone).max() < 1e-5
    assert np.abs(alone[4] - np.array(base.embed(["What happens?"])[0])).max() > 1e-4, "the video was ignored"


def test_media_the_processor_cannot_read_is_refused_by_name(base, vl):
    from fixtures_mm import write_wav

    wav = str(write_wav(vl[2] / "tone.wav"))
    with pytest.raises(Exception, match=r"item 0: gives audios, but .* has no audio feature extractor \(its processor "
                                        r"reads images, videos\)"):
        base.embed([{"text": "listen", "audios": [wav]}])


def test_a_text_only_model_refuses_image_items_by_name(tiny_dir, vl):
    from swiftall import InferEngine

    engine = InferEngine(str(tiny_dir), task_type="embedding")
    with pytest.raises(Exception, match="item 1: gives images, but .* has no image processor .*text-only model"):
        engine.embed(["fine", image_item(vl[1][0])])


# ---- bad rows stop before the model loads --------------------------------------------------------------
def _good(image):
    return {"query": QUESTION, "images": [image], "positive": ["a picture"], "positive_images": [[image]]}


@pytest.mark.parametrize("bad, message", [
    ({"query": QUESTION, "images": ["missing.png"], "positive": "p"},
     "data.jsonl:2: field 'images[0]': file not found: {root}/missing.png (relative paths are resolved against"),
    ({"query": "q", "positive": ["p"], "positive_images": [["nope.png"]]},
     "data.jsonl:2: field 'positive_images[0][0]': file not found"),
    ({"messages": [{"role": "user", "content": "<image><image>two"}], "images": ["img0.png"],
      "positive_messages": [[{"role": "user", "content": "p"}]]},
     "data.jsonl:2: field 'images': 2 <image> tag(s) in the text but 1 images"),
    ({"query": "q", "positive": ["p", "p2"], "positive_images": ["img0.png"]},
     "data.jsonl:2: field 'positive_images' has 1 entries but the row has 2 positive document(s)"),
])
def test_bad_media_rows_name_file_line_and_field(vl, tmp_path, monkeypatch, bad, message):
    import swiftall.pipelines.sft_tasks as pipeline
    from swiftall.utils.errors import SwiftallError

    model, images, root = vl
    monkeypatch.setattr(pipeline, "load_task_model", _no_load)
    data = write_rows(root / "data.jsonl", [_good("img0.png"), bad])  # relative paths: against the file's folder
    with pytest.raises(SwiftallError) as err:
        sft(model, data, tmp_path / "run")
    assert message.format(root=root) in str(err.value)
    assert not (tmp_path / "run").exists()


def test_a_text_only_model_refuses_media_rows_before_loading(tiny_dir, vl, tmp_path, monkeypatch):
    import swiftall.pipelines.sft_tasks as pipeline
    from swiftall.utils.errors import SwiftallError

    monkeypatch.setattr(pipeline, "load_task_model", _no_load)
    data = write_rows(tmp_path / "data.jsonl", [{"query": "q", "positive": "p"}, _good(vl[1][0])])
    with pytest.raises(SwiftallError, match=r"data.jsonl:2: field 'images': gives images, but .* has no image "
                                            r"processor \(it is a text-only model\)"):
        sft(tiny_dir, data, tmp_path / "run", strict=False)
    assert not (tmp_path / "run").exists()


def _no_load(*a, **k):
    raise AssertionError("the model was loaded")


# ---- training, evaluation, merge, serving ----------------------------------------------------------------
NAMES = ["a cat", "a boat", "a tree", "a house"]


def _rows(images):
    """Text -> image retrieval: the query names a picture, its positive is that picture and its negative the next
    one, both with the same words ("A photo."), so only the pixels tell the documents apart."""
    return [{"query": f"A picture of {NAMES[i]}.", "positive": ["A photo."], "positive_images": [[images[i]]],
             "negative": ["A photo."], "negative_images": [[images[(i + 1) % len(images)]]]}
            for i in range(len(images))]


@pytest.fixture(scope="module")
def run(vl):
    """12 LoRA steps on four rows, evaluated on the same rows (the pool: the four pictures)."""
    model, images, root = vl
    rows = write_rows(root / "train.jsonl", _rows(images[:4]))
    summary = sft(model, rows, root / "run", max_steps=12, learning_rate=5e-3, val_dataset=[str(rows)],
                  eval_steps=1000, lora_rank=8, lora_alpha=32, seed=0)
    return summary, images


def test_training_on_image_rows_lowers_the_loss_and_learns_to_rank_the_pictures(run):
    summary, _ = run
    logged = [json.loads(line) for line in open(f"{summary['output_dir']}/logging.jsonl")]
    losses = [row["loss"] for row in logged if "loss" in row]
    assert len(losses) == 12 and np.mean(losses[-3:]) < 0.6 * losses[0], losses
    before, after = summary["eval_before"], summary["eval"]
    assert set(after) >= {"eval_recall@1", "eval_recall@10", "eval_mrr", "eval_ndcg@10"}
    assert before["eval_recall@1"] <= 0.5 and after["eval_recall@1"] == 1.0, (before, after)


def test_the_adapter_moves_image_vectors_and_its_merge_keeps_them(run, base, vl):
    from swiftall import InferEngine, export_main

    summary, images = run
    items = [image_item(images[0]), "A picture of a cat."]
    adapter = np.array(InferEngine(adapters=[summary["output_dir"]]).embed(items))
    assert np.abs(adapter - np.array(base.embed(items))).max() > 1e-3, "training left the vectors where they were"
    merged_dir = export_main(["--adapters", summary["output_dir"], "--merge_lora", "true"])
    merged = np.array(InferEngine(str(merged_dir)).embed(items))
    assert np.abs(merged - adapter).max() < 1e-5
    st = pytest.importorskip("sentence_transformers")  # loads the folder: texts only (see the README)
    text = st.SentenceTransformer(str(merged_dir), device="cpu").encode(items[1:])
    assert np.abs(text - merged[1:]).max() < 1e-4


def test_v1_embeddings_takes_chat_messages_with_an_image(run, vl):
    from fastapi.testclient import TestClient

    from swiftall import InferEngine
    from swiftall.serve.app import create_app
    from swiftall.serve.handlers import ServeSettings

    summary, images = run
    engine = InferEngine(adapters=[summary["output_dir"]])
    expected = engine.embed([image_item(images[1])])[0]
    data_url = "data:image/png;base64," + base64.b64encode(open(images[1], "rb").read()).decode()

    def message(url):
        return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                             {"type": "text", "text": QUESTION}]}]

    settings = ServeSettings(served_model_name="m", allow_local_media=str(vl[2]))
    with TestClient(create_app(engine, settings, close_engine=False)) as client:
        by_data = client.post("/v1/embeddings", json={"model": "m", "messages": message(data_url)})
        by_path = client.post("/v1/embeddings", json={"model": "m", "messages": message(images[1])})
        outside = client.post("/v1/embeddings", json={"model": "m", "messages": message("/etc/hostname")})
        text = client.post("/v1/embeddings", json={"model": "m", "input": ["A picture of a cat."]})
        both = client.post("/v1/embeddings", json={"model": "m", "input": "x", "messages": message(data_url)})
    for r in (by_data, by_path):
        assert r.status_code == 200, r.text
        assert len(r.json()["data"]) == 1 and np.abs(np.array(r.json()["data"][0]["embedding"]) - expected).max() < 1e-5
    assert outside.status_code == 400 and "allow_local_media" in outside.text
    assert text.status_code == 200 and len(text.json()["data"][0]["embedding"]) == 32
    assert both.status_code == 400


def test_infer_writes_the_vector_of_each_image_row(run, vl, tmp_path):
    from swiftall import InferEngine
    from swiftall.pipelines.infer import infer_main

    summary, images = run
    rows = write_rows(vl[2] / "queries.jsonl", [{"query": "A photo.", "images": ["img2.png"], "id": 1},
                                                {"query": "A picture of a cat.", "id": 2}])
    written = infer_main({"adapters": [summary["output_dir"]], "val_dataset": [str(rows)],
                          "result_path": str(tmp_path / "out.jsonl")})
    expected = InferEngine(adapters=[summary["output_dir"]]).embed([image_item(images[2], "A photo."),
                                                                     "A picture of a cat."])
    assert [r["id"] for r in written] == [1, 2]
    assert np.abs(np.array([r["embedding"] for r in written]) - np.array(expected)).max() < 1e-5

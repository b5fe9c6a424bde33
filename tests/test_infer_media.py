"""Media at inference: `engine.infer("...<image>", images=[...])`, `swiftall infer --query ... --images ...`, --images
in the terminal chat, and dataset rows' media in batch inference (tiny Qwen2-VL)."""
from __future__ import annotations

import json

import pytest

from fixtures_mm import BUILDERS, write_image
from swiftall.cli.main import main
from swiftall.infer import InferRequest, InferResponse, RequestConfig
from swiftall.templates.media import MediaError

GREEDY = RequestConfig(max_new_tokens=3, temperature=0)


@pytest.fixture(scope="module")
def qwen_dir(smol_dir, tmp_path_factory):
    return BUILDERS["qwen2_vl"](smol_dir, tmp_path_factory.mktemp("qwen2_vl"))


@pytest.fixture(scope="module")
def engine(qwen_dir):
    from swiftall import InferEngine

    return InferEngine(str(qwen_dir))


@pytest.fixture(scope="module")
def cat(tmp_path_factory):
    return str(write_image(tmp_path_factory.mktemp("pics") / "cat.png", (56, 56)))


class Recorder:
    """Stands in for an engine: records requests, answers "ok" (or passes them to a real engine)."""

    def __init__(self, real=None):
        self.real, self.requests, self.answers = real, [], []

    def infer(self, requests, config=None):
        batch = [requests] if isinstance(requests, InferRequest) else list(requests)
        self.requests += batch
        if self.real is not None:
            self.answers.append(self.real.infer(requests, config))
            return self.answers[-1]
        answers = [InferResponse(text="ok", finish_reason="stop", prompt_tokens=1, completion_tokens=1) for _ in batch]
        return answers[0] if isinstance(requests, InferRequest) else answers


def test_python_api_takes_one_question_with_its_images(engine, cat):
    question = "What is in this picture?<image>"
    answer = engine.infer(question, images=[cat], config=GREEDY)
    assert isinstance(answer, InferResponse) and answer.completion_tokens > 0
    # the prompt the engine answered holds the image's tokens: 56x56 pixels -> 4 image tokens after merging
    messages = [{"role": "user", "content": question}]
    expected = engine.template.encode_for_generation(messages, media={"images": [cat]}).input_ids
    assert answer.prompt_tokens == len(expected)
    assert expected.count(engine.tokenizer.convert_tokens_to_ids("<|image_pad|>")) == 4
    tagged = engine.template.encode_for_generation([{"role": "user", "content": "<image>What is this?"}],
                                                   media={"images": [cat]}).input_ids
    assert engine.infer("What is this?", images=cat, config=GREEDY).prompt_tokens == len(tagged)  # untagged: first
    many = engine.infer([InferRequest(messages=messages, images=[cat])], GREEDY)
    assert isinstance(many, list) and many[0].text == answer.text  # lists still give lists (greedy: same answer)


def test_python_api_missing_image_names_the_path(engine, tmp_path):
    missing = tmp_path / "nope" / "cat.jpg"
    with pytest.raises(MediaError, match=rf"images\[0\].*file not found: {missing}"):
        engine.infer("What is in this picture?<image>", images=[str(missing)], config=GREEDY)
    with pytest.raises(TypeError, match="one request"):
        engine.infer(["a", "b"], GREEDY, images=[str(missing)])


def test_cli_query_with_images(qwen_dir, cat, monkeypatch, capsys):
    import swiftall.pipelines.infer as infer_pipeline

    built = []
    real_build = infer_pipeline.build_engine
    monkeypatch.setattr(infer_pipeline, "build_engine", lambda cfg: built.append(Recorder(real_build(cfg))) or built[0])
    rc = main(["infer", "--model", str(qwen_dir), "--query", "What is in this picture?<image>", "--images", cat,
               "--max_new_tokens", "3", "--temperature", "0"])
    assert rc == 0
    (request,) = built[0].requests
    assert request.images == [cat] and request.messages == [{"role": "user", "content": "What is in this picture?<image>"}]
    assert capsys.readouterr().out.endswith(built[0].answers[0].text + "\n")  # the answer is printed


def test_cli_missing_image_fails_before_the_model_loads(qwen_dir, tmp_path, monkeypatch, capsys):
    import swiftall.pipelines.infer as infer_pipeline

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(infer_pipeline, "build_engine", lambda cfg: pytest.fail("the model was loaded"))
    assert main(["infer", "--model", str(qwen_dir), "--query", "<image>?", "--images", "photos/cat.jpg"]) == 2
    err = capsys.readouterr().err
    assert f"--images: file not found: {tmp_path / 'photos' / 'cat.jpg'}" in err and "Traceback" not in err
    assert main(["infer", "--model", str(qwen_dir), "--val_dataset", "q.jsonl", "--images", "photos/cat.jpg"]) == 2
    assert "each row carries its own images" in capsys.readouterr().err


def test_chat_images_flag_goes_with_the_first_message(tmp_path):
    from swiftall.infer.chat import run_chat

    lines = ["What is this?", "And now <image>?", "b.png", "/clear", "Compare <image> with it", "/exit"]
    engine, read = Recorder(), iter(lines).__next__
    run_chat(engine, RequestConfig(), stream=False, read=lambda prompt: read(), write=lambda text: None,
             media={"images": ["a.png"]})
    first, second, fresh = engine.requests
    assert first.images == ["a.png"] and first.messages[-1]["content"] == "<image>What is this?"  # the tag is written
    assert second.images == ["a.png", "b.png"] and second.messages[0]["content"] == "<image>What is this?"
    assert fresh.images == ["a.png"] and fresh.messages == [{"role": "user", "content": "Compare <image> with it"}]


def test_batch_rows_bring_their_media(qwen_dir, cat, write_jsonl, tmp_path, monkeypatch):
    import swiftall.pipelines.infer as infer_pipeline
    from swiftall import infer_main

    built = []
    monkeypatch.setattr(infer_pipeline, "build_engine", lambda cfg: built.append(Recorder()) or built[0])
    rows = [{"messages": [{"role": "user", "content": "<image>What is it?"}, {"role": "assistant", "content": "A cat"}],
             "images": ["cat.png"]}, {"query": "Just text"}]
    data = write_jsonl(rows)
    (tmp_path / "cat.png").write_bytes(open(cat, "rb").read())
    results = infer_main(["--model", str(qwen_dir), "--val_dataset", str(data), "--result_path",
                          str(tmp_path / "r.jsonl")])
    assert [r.images for r in built[0].requests] == [[str(tmp_path / "cat.png")], []]
    assert [json.loads(line)["response"] for line in open(tmp_path / "r.jsonl")] == ["ok", "ok"] == \
        [r["response"] for r in results]

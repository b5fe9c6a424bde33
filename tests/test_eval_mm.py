"""Captions and visual questions scored through the real engine on a tiny random Qwen2-VL: the images reach the
model, captions get BLEU-1..4, ROUGE-L and CIDEr with intervals, VQA rows get the soft accuracy. (A random model's
answers are blank lines, so the scores are 0; what is checked is that every metric comes with its interval.)"""
from __future__ import annotations

import json

import pytest

from fixtures_mm import BUILDERS, write_image
from swiftall.pipelines.eval import eval_main


@pytest.fixture(scope="module")
def qwen_dir(smol_dir, tmp_path_factory):
    return BUILDERS["qwen2_vl"](smol_dir, tmp_path_factory.mktemp("qwen2_vl"))


def test_captions_and_vqa_on_a_tiny_vision_model(qwen_dir, tmp_path):
    for i in range(4):
        write_image(tmp_path / f"img{i}.png", (56, 56), seed=i)
    captions = tmp_path / "captions.jsonl"
    captions.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": "<image>Describe this image."},
        {"role": "assistant", "content": f"a small square picture number {i}"}], "images": [f"img{i}.png"]}) + "\n"
        for i in range(4)))
    vqa = tmp_path / "vqa.jsonl"
    vqa.write_text("".join(json.dumps({"query": f"<image>What number is shown {i}?", "answers": ["one"] * 10,
                                       "images": [f"img{i}.png"]}) + "\n" for i in range(4)))
    report = eval_main({"model": str(qwen_dir), "eval_dataset": [str(captions), str(vqa)],
                        "eval_output_dir": str(tmp_path / "out"), "eval_generation_config": {"max_tokens": 4},
                        "eval_dataset_args": {"captions": {"meteor": False}}, "eval_progress": False})
    cap, vq = report["datasets"]["captions"], report["datasets"]["vqa"]
    assert cap["eval_type"] == "caption" and vq["eval_type"] == "vqa"
    assert {"cider", "bleu1", "bleu4", "rougeL"} <= set(cap["metrics"]) and "meteor" not in cap["metrics"]
    for entry in cap["metrics"].values():
        assert entry["n"] == 4 and entry["value"] is not None and len(entry["ci95"]) == 2
    assert vq["primary"] == "vqa_acc" and vq["metrics"]["vqa_acc"]["n"] == 4
    lines = [json.loads(x) for x in (tmp_path / "out").glob("*/predictions/captions.jsonl").__next__()
             .read_text().splitlines()]
    assert all("cider" in x["score"] and "meteor" not in x["score"] and x["completion_tokens"] > 0 for x in lines)

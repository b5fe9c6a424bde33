"""A tiny random Qwen2-VL exported with bitsandbytes 8-bit: the language model's linear layers are quantized, the
vision tower (and its merger) is kept as it was, and the export still answers an image question: its next-token
distribution on an image prompt matches the original's for each image (and differs between images, so the image
reaches the model), loaded by transformers and answered by `swiftall infer`."""
from __future__ import annotations

import importlib.util
import json
from types import SimpleNamespace as NS

import pytest

from fixtures_mm import BUILDERS, write_image
from swiftall.pipelines.export import export_main

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None,
                                reason="bitsandbytes is not installed (pip install 'swiftall[export]')")
QUESTION = "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is in this picture?<|im_end|>\n" \
           "<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def exported(smol_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("vl-export")
    original = BUILDERS["qwen2_vl"](smol_dir, root / "qwen2-vl")
    out = export_main(NS(model=str(original), quant_method="bnb", quant_bits=8, output_dir=str(root / "bnb8"),
                         check_n_samples=4, check_prompts=["Hi"], check_max_new_tokens=4))
    images = [write_image(root / f"img{i}.png", (56, 56), seed=i) for i in range(2)]
    return original, out, images


def test_vision_tower_stays_unquantized_and_the_language_model_is_int8(exported):
    from safetensors import safe_open

    original, out, _ = exported
    report = json.loads((out / "export_report.json").read_text())
    assert "model.visual" in report["unquantized_prefixes"] and report["check"]["passed"]
    before = safe_open(str(original / "model.safetensors"), "pt")
    after = safe_open(str(out / "model.safetensors"), "pt")
    vision = [k for k in before.keys() if k.startswith("visual.")]
    assert len(vision) > 10
    for key in vision:   # every vision weight, merger included, written back unchanged
        assert after.get_tensor(key).dtype == before.get_tensor(key).dtype
        assert after.get_tensor(key).equal(before.get_tensor(key)), key
    assert after.get_tensor("model.layers.0.self_attn.q_proj.weight").dtype.itemsize == 1   # int8
    assert "model.layers.0.self_attn.q_proj.SCB" in after.keys()


def test_export_answers_an_image_question_like_the_original(exported):
    import torch
    from PIL import Image
    from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

    original, out, images = exported
    processor = AutoProcessor.from_pretrained(out)
    models = [Qwen2VLForConditionalGeneration.from_pretrained(p, dtype=torch.float32) if p == original
              else Qwen2VLForConditionalGeneration.from_pretrained(p) for p in (original, out)]
    dists = []
    for image in images:
        inputs = processor(text=[QUESTION], images=[Image.open(image)], return_tensors="pt")
        with torch.no_grad():
            dists.append([torch.log_softmax(m(**inputs).logits[0, -1].float(), -1) for m in models])
    for ref, exp in dists:
        kl = torch.sum(ref.exp() * (ref - exp)).item()
        assert kl < 1e-3 and ref.argmax() == exp.argmax(), kl
    assert (dists[0][0] - dists[1][0]).abs().max() > 1e-4   # the image changes the answer's distribution


def test_swiftall_infer_answers_with_the_export_as_with_the_original(exported):
    from swiftall.pipelines.infer import infer_main

    original, out, images = exported
    answers = [infer_main({"model": str(m), "query": "<image>What is in this picture?", "images": [str(images[0])],
                           "max_new_tokens": 4, "temperature": 0}) for m in (original, out)]
    assert isinstance(answers[1], str) and answers[1] == answers[0]

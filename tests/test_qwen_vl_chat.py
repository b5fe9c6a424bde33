"""Qwen-VL-Chat (remote code): images written into the prompt as `Picture N: <img>path</img>`, its ChatML text and
loss mask, grounding in its notation, and the explicit --trust_remote_code opt-in. The repo's own tokenizer cannot be
downloaded here: SmolLM2's tokenizer stands in for the ids (the text is what swiftall is responsible for)."""
from __future__ import annotations

import json

import pytest

from fixtures_mm import write_image
from swiftall.cli.main import main
from swiftall.models import ModelInfo
from swiftall.models.registry import get_family
from swiftall.templates import IGNORE, TemplateError, TooLongError, get_template
from swiftall.templates.media import MediaError
from swiftall.templates.qwen_vl_chat import QwenVLChatTemplate

SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>"


@pytest.fixture(scope="module")
def tok(smol_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_dir)


@pytest.fixture(scope="module")
def pics(tmp_path_factory):
    d = tmp_path_factory.mktemp("vlchat")
    return str(write_image(d / "cat.png", (300, 200))), str(write_image(d / "dog.png", (56, 56), seed=1))


def template(tok, **kwargs):
    info = ModelInfo(path=None, name="qwen-vl-chat", meta=None, family=get_family("qwen_vl_chat"), template=None)
    return get_template(tok, info, **kwargs)


def chat(*turns):
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]


def test_the_family_points_to_its_template(tok):
    assert get_family("qwen_vl_chat").template_class == "qwen_vl_chat"
    assert isinstance(template(tok), QwenVLChatTemplate)


def test_images_become_numbered_pictures_in_the_text(tok, pics):
    cat, dog = pics
    url = "https://example.com/dog.png"
    rows = chat("<image>What is this?", "A cat.", "And <image>?", "A dog.")
    segments = template(tok).segments(rows, media={"images": [cat, url]})
    assert segments == [
        (SYSTEM, False),
        (f"\n<|im_start|>user\nPicture 1: <img>{cat}</img>\nWhat is this?<|im_end|>", False),
        ("\n<|im_start|>assistant\n", False), ("A cat.<|im_end|>", True),
        (f"\n<|im_start|>user\nAnd Picture 2: <img>{url}</img>\n?<|im_end|>", False),
        ("\n<|im_start|>assistant\n", False), ("A dog.<|im_end|>", True)]


def test_untagged_images_go_first_and_the_prompt_ends_with_the_assistant_header(tok, pics):
    cat, dog = pics
    text = template(tok, system="Be brief.").render(chat("Compare them."), add_generation_prompt=True,
                                                   media={"images": [cat, dog]})
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n"
                    f"Picture 1: <img>{cat}</img>\nPicture 2: <img>{dog}</img>\nCompare them.<|im_end|>\n"
                    "<|im_start|>assistant\n")


def test_labels_cover_the_answers_only(tok, pics):
    enc = template(tok).encode(chat("<image>What is this?", "A cat."), media={"images": [pics[0]]})
    assert tok.decode([t for t, l in zip(enc.input_ids, enc.labels) if l != IGNORE]) == "A cat.<|im_end|>"
    prompt = template(tok).encode_for_generation(chat("<image>What is this?"), media={"images": [pics[0]]})
    assert enc.input_ids[:len(prompt.input_ids)] == prompt.input_ids
    assert tok.decode(prompt.input_ids).endswith("<|im_start|>assistant\n")


def test_grounding_uses_ref_and_box_tags(tok, pics):
    rows = chat("<image>Where is the <ref-object>?", "<bbox>")
    segments = template(tok).segments(rows, media={"images": [pics[0]]},
                                      objects={"ref": ["cat"], "bbox": [[30, 50, 150, 100]]})
    assert "Where is the <ref>cat</ref>?" in segments[1][0]
    assert segments[-1] == ("<box>(100,250),(500,500)</box><|im_end|>", True)


def test_a_cut_never_splits_a_picture(smol_dir, pics):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smol_dir)
    tok.add_special_tokens({"additional_special_tokens": ["<img>", "</img>"]})
    rows = chat("<image>" + "word " * 40, "A cat.")
    full = template(tok).encode(rows, media={"images": [pics[0]]})
    with pytest.raises(TooLongError, match="cut through media"):
        template(tok, max_length=len(full) - 50, truncation_strategy="left").encode(rows, media={"images": [pics[0]]})
    cut = template(tok, max_length=len(full) - 5, truncation_strategy="right").encode(rows, media={"images": [pics[0]]})
    assert len(cut) == len(full) - 5


@pytest.mark.parametrize("media, message", [
    ({"images": ["data:image/png;base64,iVBORw0KGgo="]}, r"images\[0\].*give a file path or an http\(s\) URL"),
    ({"images": ["/nowhere/cat.png"]}, r"images\[0\].*file not found: /nowhere/cat.png"),
    ({"audios": ["a.wav"]}, r"field 'audios': Qwen-VL-Chat reads images only"),
    ({"images": []}, r"1 <image> tag\(s\) in the text but 0 images"),
])
def test_bad_media_is_refused(tok, media, message):
    with pytest.raises((TemplateError, MediaError), match=message):
        template(tok).segments(chat("<image>What is this?", "A cat."), media=media)


def test_a_path_too_long_for_the_img_span_is_refused(tok, tmp_path):
    image = write_image(tmp_path / ("x" * 240 + ".png"), (8, 8))  # its absolute path is over 256 bytes
    with pytest.raises(TemplateError, match=r"bytes; Qwen-VL-Chat's tokenizer holds at most 256 .* shorter path"):
        template(tok).segments(chat("<image>What is this?", "A cat."), media={"images": [str(image)]})


def test_cli_asks_for_trust_remote_code(tmp_path, capsys):
    model = tmp_path / "Qwen-VL-Chat"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen", "architectures": ["QWenLMHeadModel"]}))
    rc = main(["infer", "--model", str(model), "--model_type", "qwen_vl_chat", "--query", "hi"])
    err = capsys.readouterr().err
    assert rc == 2 and "pass --trust_remote_code true to allow it" in err and "Traceback" not in err

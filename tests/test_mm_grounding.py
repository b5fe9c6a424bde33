"""Grounding rows: `objects` (ms-swift's format) written into each family's own box notation, and bad objects refused."""
from __future__ import annotations

import base64

import pytest

from fixtures_mm import BUILDERS, write_image
from swiftall.data.encode import encode_sample
from swiftall.models import load_tokenizer, resolve_model
from swiftall.models.registry import get_family
from swiftall.templates import IGNORE, TemplateError, get_template

SHEEP = {"ref": ["sheep"], "bbox": [[30, 50, 150, 100]]}   # pixels of a 300x200 image


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    return str(write_image(tmp_path_factory.mktemp("ground") / "field.png", (300, 200)))


def _template(smol_dir, tmp_path_factory, name, **options):
    path = BUILDERS[name](smol_dir, tmp_path_factory.mktemp(name))
    info = resolve_model(str(path))
    tok = load_tokenizer(info)
    return tok, lambda **extra: get_template(tok, info, **{**options, **extra})


@pytest.fixture(scope="module")
def qwen2(smol_dir, tmp_path_factory):
    return _template(smol_dir, tmp_path_factory, "qwen2_vl")


@pytest.fixture(scope="module")
def qwen25(smol_dir, tmp_path_factory):
    return _template(smol_dir, tmp_path_factory, "qwen2_5_vl")


def find(question="<image>Find the <ref-object> in the picture.", answer="<bbox>"):
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def texts(tok, enc):
    prompt = tok.decode([t for t, l in zip(enc.input_ids, enc.labels) if l == IGNORE])
    answer = tok.decode([t for t, l in zip(enc.input_ids, enc.labels) if l != IGNORE])
    return prompt, answer


def test_qwen2_vl_boxes_are_0_to_1000_of_the_image(qwen2, photo):
    tok, template = qwen2
    enc = template().encode(find(), media={"images": [photo]}, objects=SHEEP)
    prompt, answer = texts(tok, enc)
    assert "Find the <|object_ref_start|>sheep<|object_ref_end|> in the picture." in prompt
    # x: 30/300, 150/300 of the width; y: 50/200, 100/200 of the height -> thousandths
    assert answer == "<|box_start|>(100,250),(500,500)<|box_end|><|im_end|>\n"


def test_qwen2_5_vl_boxes_are_pixels_of_the_resized_image(qwen25, photo):
    tok, template = qwen25
    enc = template().encode(find(), media={"images": [photo]}, objects=SHEEP)
    _, grid_h, grid_w = enc.extra["image_grid_thw"][0].tolist()
    assert (grid_w * 14, grid_h * 14) == (112, 84)  # the processor resized 300x200 to 112x84
    assert texts(tok, enc)[1] == "<|box_start|>(11,21),(56,42)<|box_end|><|im_end|>\n"  # 30*112/300=11.2, 50*84/200=21
    smaller = template(max_pixels=6000).encode(find(), media={"images": [photo]}, objects=SHEEP)
    _, grid_h, grid_w = smaller.extra["image_grid_thw"][0].tolist()
    assert (grid_w * 14, grid_h * 14) == (84, 56)  # --max_pixels scaled the file to 94x63 first
    assert texts(tok, smaller)[1] == "<|box_start|>(8,14),(42,28)<|box_end|><|im_end|>\n"  # 30*84/300=8.4, ...


def test_qwen2_vl_box_does_not_move_when_max_pixels_shrinks_the_image(qwen2, photo):
    tok, template = qwen2
    enc = template(max_pixels=150 * 100).encode(find(), media={"images": [photo]}, objects=SHEEP)
    assert texts(tok, enc)[1] == "<|box_start|>(100,250),(500,500)<|box_end|><|im_end|>\n"


def test_default_notation_for_other_families(smol_dir, tmp_path_factory, photo):
    tok, template = _template(smol_dir, tmp_path_factory, "llava")
    assert get_family("llava").grounding.coords == "norm1000"
    enc = template().encode(find(), media={"images": [photo]}, objects=SHEEP)
    prompt, answer = texts(tok, enc)
    assert "Find the sheep in the picture." in prompt
    assert answer.startswith("[100, 250, 500, 500]")


def test_internvl_writes_ref_and_box_tags(smol_dir, tmp_path_factory, photo):
    tok, template = _template(smol_dir, tmp_path_factory, "internvl")
    enc = template().encode(find(), media={"images": [photo]}, objects=SHEEP)
    prompt, answer = texts(tok, enc)
    assert "Find the <ref>sheep</ref> in the picture." in prompt
    assert answer.startswith("<box>[[100, 250, 500, 500]]</box>")


def test_points_several_boxes_norm1_and_image_id(qwen2, photo, tmp_path):
    tok, template = qwen2
    square = str(write_image(tmp_path / "square.png", (100, 100)))
    objects = {"ref": [], "bbox": [[150, 100], [0.5, 0.5, 1, 1]], "bbox_type": "real", "image_id": [0, 1]}
    rows = find("<image><image>Click the middle, then the corner.", "<bbox> then <bbox>")
    off_square = {**objects, "bbox": [[150, 100], [50, 50, 101, 90]]}  # x2 = 101 is off the 100x100 image 1
    with pytest.raises(TemplateError, match=r"bbox\[1\]'.* 100x100 image images\[1\]"):
        template().encode(rows, media={"images": [photo, square]}, objects=off_square)
    enc = template().encode(rows, media={"images": [photo, square]}, objects=objects)
    assert texts(tok, enc)[1] == "<|box_start|>(500,500)<|box_end|> then <|box_start|>(5,5),(10,10)<|box_end|><|im_end|>\n"
    norm = {"ref": ["sheep"], "bbox": [[0.1, 0.25, 0.5, 0.5]], "bbox_type": "norm1"}
    assert texts(tok, template().encode(find(), media={"images": [photo]}, objects=norm))[1] == \
        "<|box_start|>(100,250),(500,500)<|box_end|><|im_end|>\n"


def test_the_data_path_carries_objects_to_the_template(qwen2, photo):
    tok, template = qwen2
    sample = {"messages": find(), "images": [photo], "objects": SHEEP}
    assert texts(tok, encode_sample(template(), sample))[1].startswith("<|box_start|>(100,250),(500,500)")


def test_template_show_marks_the_box_as_trained(smol_dir, tmp_path, write_jsonl, capsys):
    from swiftall.cli.main import main

    model = BUILDERS["qwen2_vl"](smol_dir, tmp_path / "model")
    write_image(tmp_path / "field.png", (300, 200))
    data = write_jsonl([{"messages": find(), "images": ["field.png"], "objects": SHEEP}])
    assert main(["template", "show", "--model", str(model), "--dataset", str(data), "--rows", "1"]) == 0
    shown = capsys.readouterr().out
    assert "Find the <|object_ref_start|>sheep<|object_ref_end|> in the picture." in shown
    assert "[[<|box_start|>(100,250),(500,500)<|box_end|><|im_end|>" in shown


@pytest.mark.parametrize("objects, rows, message", [
    ({"ref": ["sheep"], "bbox": [[30, 50, 150]]}, find(), r"objects.bbox\[0\]': a box is \[x1, y1, x2, y2\]"),
    ({"ref": ["sheep"], "bbox": [30, 50, 150, 100]}, find(), r"one flat list of numbers; give a list of boxes"),
    ({"ref": ["sheep", "dog"], "bbox": [[30, 50, 150, 100]]}, find(), r"objects.ref holds 2 but the text has 1"),
    (SHEEP, find(answer="<bbox><bbox>"), r"2 <bbox> tag\(s\) but objects.bbox holds 1; give one box per tag"),
    ({"ref": ["sheep"], "bbox": [[30, 50, 350, 100]]}, find(), r"\[30, 50, 350, 100\] lies outside the image; "
                                                               r"coordinates are pixels of the 300x200 image"),
    ({"ref": ["sheep"], "bbox": [[150, 50, 30, 100]]}, find(), r"x1 > x2 or y1 > y2"),
    ({"ref": ["sheep"], "bbox": [[1, 2, 3, 4]], "image_id": [1]}, find(), r"images\[1\] but the row has 1 image"),
    (None, find(), r"the text has 1 <ref-object> tag\(s\) but objects.ref holds 0"),
])
def test_bad_objects_name_the_field(qwen2, photo, objects, rows, message):
    _, template = qwen2
    with pytest.raises(TemplateError, match=message):
        template().encode(rows, media={"images": [photo]}, objects=objects)


def test_boxes_are_checked_on_images_given_as_data(qwen2, photo):
    _, template = qwen2
    data = "data:image/png;base64," + base64.b64encode(open(photo, "rb").read()).decode()
    with pytest.raises(TemplateError, match="outside the image"):
        template().encode_for_generation(find("<image>What is at <bbox>?")[:1], media={"images": [data]},
                                         objects={"bbox": [[0, 0, 301, 10]]})


def test_text_only_models_refuse_objects(smol_dir):
    from transformers import AutoTokenizer

    template = get_template(AutoTokenizer.from_pretrained(smol_dir))
    with pytest.raises(TemplateError, match="text-only .* grounding objects"):
        template.encode(find("Find the <ref-object>"), objects=SHEEP)

"""DPO with images (issue #6): `{"prompt": "...<image>", "chosen", "rejected", "images"}` rows on a tiny Qwen2-VL
with LoRA, encoded by swiftall's multimodal template; the run logs DPO's metrics and its adapter answers with an
image; a bad image path stops the run with file:line."""
from __future__ import annotations

import json

import pytest

from fixtures_mm import qwen2_vl, write_image
from swiftall.train.callbacks import read_log


@pytest.fixture(scope="module")
def vl_dir(smol_dir, tmp_path_factory):
    return qwen2_vl(smol_dir, tmp_path_factory.mktemp("qwen2-vl"))


def _rows(root, n=6):
    rows = []
    for i in range(n):
        write_image(root / f"pic{i}.png", seed=i)
        rows.append({"prompt": "What is in this picture?<image>", "chosen": f"A photo of thing number {i}.",
                     "rejected": "Go away.", "images": [f"pic{i}.png"]})
    return rows


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_dpo_with_images_logs_rewards_and_its_adapter_answers_with_an_image(vl_dir, tmp_path, monkeypatch):
    from transformers.models.qwen2_vl import modeling_qwen2_vl

    from swiftall import InferEngine, rlhf_main

    seen = []
    forward = modeling_qwen2_vl.Qwen2VLModel.forward

    def spy(self, *args, pixel_values=None, image_grid_thw=None, **kwargs):
        seen.append((None if pixel_values is None else image_grid_thw.shape[0], kwargs["input_ids"].shape[0]))
        return forward(self, *args, pixel_values=pixel_values, image_grid_thw=image_grid_thw, **kwargs)

    monkeypatch.setattr(modeling_qwen2_vl.Qwen2VLModel, "forward", spy)
    data = _write(tmp_path / "prefs.jsonl", _rows(tmp_path))
    out = tmp_path / "run"
    summary = rlhf_main(["--rlhf_type", "dpo", "--model", str(vl_dir), "--dataset", str(data), "--max_steps", "3",
                         "--per_device_train_batch_size", "2", "--learning_rate", "5e-3", "--logging_steps", "1",
                         "--report_to", "none", "--seed", "0", "--output_dir", str(out)])
    monkeypatch.undo()
    assert summary["global_step"] == 3 and summary["rows"]["train"] == 6
    # every training forward (policy and reference) saw one image per row: 2 pairs -> 4 rows, 4 images
    assert len(seen) == 6 and all(images == rows == 4 for images, rows in seen), seen
    steps = [r for r in read_log(out) if "rewards/chosen" in r]
    assert len(steps) == 3
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen"):
        assert all(key in r for r in steps), key
    assert steps[-1]["rewards/margins"] > 0, steps  # chosen answers pulled ahead of the rejected ones
    adapter = json.loads((out / "adapter_config.json").read_text())
    targets = adapter["target_modules"]
    assert targets and not any("visual" in t for t in targets), targets  # --freeze_vit: no LoRA on the vision tower
    engine = InferEngine(adapters=[str(out)], max_new_tokens=4, temperature=0)
    answer = engine.infer("What is in this picture?<image>", images=[str(tmp_path / "pic0.png")])
    assert answer.completion_tokens >= 1 and isinstance(answer.text, str)


def test_dpo_bad_image_path_names_file_line_and_field(vl_dir, tmp_path):
    from swiftall import rlhf_main
    from swiftall.utils.errors import DataError

    rows = _rows(tmp_path, 3)
    rows[1]["images"] = ["no-such-picture.png"]
    data = _write(tmp_path / "prefs.jsonl", rows)
    with pytest.raises(DataError) as info:
        rlhf_main(["--rlhf_type", "dpo", "--model", str(vl_dir), "--dataset", str(data), "--max_steps", "1",
                   "--report_to", "none", "--output_dir", str(tmp_path / "run")])
    message = str(info.value)
    assert f"{data}:2" in message and "no-such-picture.png" in message, message
    assert "field 'images[0]'" in message, message
    assert not (tmp_path / "run" / "adapter_config.json").exists()


def test_media_rows_need_dpo_and_a_multimodal_model(vl_dir, tiny_dir, tmp_path):
    from swiftall import rlhf_main
    from swiftall.utils.errors import ConfigError, DataError

    data = _write(tmp_path / "prefs.jsonl", _rows(tmp_path, 2))
    with pytest.raises(DataError, match=f"{data}:1: this model is text-only but the row carries images"):
        rlhf_main(["--rlhf_type", "dpo", "--model", str(tiny_dir), "--dataset", str(data), "--max_steps", "1",
                   "--report_to", "none", "--output_dir", str(tmp_path / "a")])
    for method in ("orpo", "kto", "grpo"):  # their trainers would drop the images silently
        rows = _rows(tmp_path, 2)
        if method == "kto":
            rows = [{"prompt": r["prompt"], "completion": r["chosen"], "label": True, "images": r["images"]}
                    for r in rows]
        with pytest.raises(ConfigError, match=f"--rlhf_type {method}: rows with images"):
            rlhf_main(["--rlhf_type", method, "--model", str(vl_dir), "--dataset",
                       str(_write(tmp_path / f"{method}.jsonl", rows)), "--max_steps", "1",
                       "--per_device_train_batch_size", "2", "--report_to", "none", "--output_dir",
                       str(tmp_path / method), *(["--reward_funcs", "length"] if method == "grpo" else [])])


def test_full_dpo_with_images_keeps_the_vision_tower_frozen(vl_dir, tmp_path):
    from safetensors.torch import load_file

    from swiftall import rlhf_main

    data = _write(tmp_path / "prefs.jsonl", _rows(tmp_path, 4))
    out = tmp_path / "full"
    rlhf_main(["--rlhf_type", "dpo", "--model", str(vl_dir), "--dataset", str(data), "--train_type", "full",
               "--max_steps", "2", "--per_device_train_batch_size", "2", "--learning_rate", "1e-3",
               "--report_to", "none", "--save_steps", "100", "--output_dir", str(out)])
    before, after = load_file(vl_dir / "model.safetensors"), load_file(out / "model.safetensors")
    changed = {k for k in before if k in after and not before[k].equal(after[k])}
    assert any(k.startswith("visual.") for k in before)
    assert changed and not any(k.startswith("visual.") for k in changed), sorted(changed)[:5]  # tower and merger
    assert any(k.startswith("model.layers.") for k in changed), sorted(changed)[:5]  # the language model trained


def test_rlhf_refuses_per_part_learning_rates_it_would_ignore():
    from swiftall.config import RlhfConfig
    from swiftall.utils.errors import ConfigError

    with pytest.raises(ConfigError, match="--vit_lr: separate learning rates are an sft option"):
        RlhfConfig.from_any(["--model", "m", "--dataset", "d.jsonl", "--freeze_vit", "false", "--vit_lr", "1e-5"])

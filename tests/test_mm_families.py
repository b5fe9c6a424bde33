"""Every multimodal family, as a tiny random model: encode -> forward/backward -> a LoRA step -> save -> reload ->
generate, through swiftall's own sft_main and inference engine; and the freeze controls."""
from __future__ import annotations

import json

import pytest

from fixtures_mm import BUILDERS, write_image, write_wav
from swiftall import sft_main
from swiftall.config import SftConfig
from swiftall.utils.errors import ConfigError

AUDIO_ONLY = {"qwen2_audio"}
# vision/audio-tower module prefixes that LoRA must leave alone by default (--freeze_vit true)
TOWERS = {"qwen2_vl": "model.visual.", "qwen2_5_vl": "model.visual.", "qwen3_vl": "model.visual.",
          "llava": "model.vision_tower.", "llava_next": "model.vision_tower.", "idefics3": "model.vision_model.",
          "smolvlm": "model.vision_model.", "gemma3_vl": "model.vision_tower.", "internvl": "model.vision_tower.",
          "qwen2_audio": "model.audio_tower.", "qwen2_5_omni": "model.audio_tower."}


def _dataset(folder, family):
    write_image(folder / "a.png", (56, 56))
    write_image(folder / "b.png", (56, 84), seed=1)
    write_wav(folder / "a.wav", 0.4, freq=300.0)
    if family in AUDIO_ONLY:
        rows = [{"messages": [{"role": "user", "content": "<audio>What is this?"},
                              {"role": "assistant", "content": "A low tone."}], "audios": ["a.wav"]},
                {"messages": [{"role": "user", "content": "Describe the sound."},
                              {"role": "assistant", "content": "Humming."}], "audios": ["a.wav"]}]
    else:
        rows = [{"messages": [{"role": "user", "content": "<image>What is this?"},
                              {"role": "assistant", "content": "Noise."}], "images": ["a.png"]},
                {"messages": [{"role": "user", "content": "Compare <image> and <image>."},
                              {"role": "assistant", "content": "Both are noise."}], "images": ["a.png", "b.png"]}]
        if family == "qwen2_5_omni":
            rows[0]["messages"][0]["content"] = "<image><audio>What do you see and hear?"
            rows[0]["audios"] = ["a.wav"]
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("family", sorted(TOWERS))
def test_lora_train_save_reload_generate(family, smol_dir, tmp_path):
    import torch

    from swiftall.pipelines.infer import InferEngine

    model_dir = BUILDERS[family](smol_dir, tmp_path / family)
    data = _dataset(tmp_path, family)
    out = tmp_path / "run"
    summary = sft_main({"model": str(model_dir), "dataset": [str(data)], "output_dir": str(out), "max_steps": 1,
                        "per_device_train_batch_size": 2, "learning_rate": 0.05, "warmup_ratio": 0.0,
                        "report_to": ["none"], "torch_dtype": "float32", "lora_rank": 4, "save_steps": 100})
    assert summary["global_step"] == 1 and summary["rows"]["train"] == 2
    assert summary["train_loss"] > 0 and summary["trained_tokens"] > 0
    targets = json.loads((out / "adapter_config.json").read_text())["target_modules"]
    assert targets and not any(t.startswith(TOWERS[family]) for t in targets)

    engine = InferEngine(adapters=[str(out)], max_new_tokens=3, temperature=0, torch_dtype="float32")
    media = {"audios": [str(tmp_path / "a.wav")]} if family in AUDIO_ONLY else {"images": [str(tmp_path / "a.png")]}
    question = ("<audio>" if family in AUDIO_ONLY else "<image>") + "What is this?"
    response = engine.infer([{"messages": [{"role": "user", "content": question}], **media}])[0]
    assert response.completion_tokens >= 1 and response.prompt_tokens > 10

    # the reloaded adapter changes the model's output: the step trained something and it was saved and loaded
    encoded = engine.template.encode_for_generation([{"role": "user", "content": question}], media=media)
    ids = torch.tensor([encoded.input_ids])
    with torch.no_grad():
        adapted = engine.model(input_ids=ids, **encoded.extra).logits
        with engine.model.disable_adapter():
            base = engine.model(input_ids=ids, **encoded.extra).logits
    assert not torch.allclose(adapted, base)


def _weights(folder):
    from safetensors.torch import load_file

    out = {}
    for file in sorted(folder.glob("*.safetensors")):
        out.update(load_file(file))
    return out


def test_full_training_honours_freeze_flags(smol_dir, tmp_path):
    model_dir = BUILDERS["llava"](smol_dir, tmp_path / "llava")
    data = _dataset(tmp_path, "llava")
    before = _weights(model_dir)
    out = tmp_path / "full"
    sft_main({"model": str(model_dir), "dataset": [str(data)], "output_dir": str(out), "max_steps": 1,
              "train_type": "full", "freeze_vit": True, "freeze_aligner": False, "freeze_llm": True,
              "per_device_train_batch_size": 2, "learning_rate": 0.01, "warmup_ratio": 0.0, "report_to": ["none"],
              "torch_dtype": "float32", "save_steps": 100})
    after = _weights(out)
    assert set(before) == set(after)
    changed = {name for name in before if not (before[name] == after[name]).all()}
    # only the aligner trained; the vision tower and the language model are bit-for-bit the same
    assert changed and all("multi_modal_projector." in name for name in changed)


def test_freeze_flags_and_param_groups(smol_dir, tmp_path):
    import transformers

    from swiftall.models import resolve_model
    from swiftall.tuners.freeze import multimodal_lora_targets, param_groups, part_of

    info = resolve_model(str(BUILDERS["qwen2_vl"](smol_dir, tmp_path / "q")))
    model = transformers.AutoModelForImageTextToText.from_pretrained(info.path)
    family = info.family
    assert part_of("model.visual.blocks.0.attn.qkv.weight", family) == "vit"
    assert part_of("model.visual.merger.mlp.0.weight", family) == "aligner"      # inside the tower, longest prefix
    assert part_of("base_model.model.model.language_model.layers.0.mlp.up_proj.weight", family) == "llm"

    cfg = SftConfig(model="x", dataset=["d"], freeze_vit=False, freeze_aligner=False, freeze_llm=True, vit_lr=1e-5,
                    aligner_lr=1e-3)
    targets = multimodal_lora_targets(model, cfg, family)
    assert targets and all(t.startswith("model.visual.") for t in targets)
    assert any(".merger." in t for t in targets) and any(".blocks." in t for t in targets)
    only_vit = multimodal_lora_targets(model, SftConfig(model="x", dataset=["d"], freeze_vit=False, freeze_llm=True),
                                       family)
    assert only_vit and not any(".merger." in t for t in only_vit)
    groups = param_groups(model, cfg, family, learning_rate=1e-4, weight_decay=0.1)
    rates = {}
    for group in groups:
        for p in group["params"]:
            rates[id(p)] = group["lr"]
    named = dict(model.named_parameters())
    assert rates[id(named["model.visual.blocks.0.attn.qkv.weight"])] == 1e-5
    assert rates[id(named["model.visual.merger.mlp.0.weight"])] == 1e-3
    assert rates[id(named["model.language_model.layers.0.mlp.up_proj.weight"])] == 1e-4
    with pytest.raises(ConfigError, match="nothing would train"):
        multimodal_lora_targets(model, SftConfig(model="x", dataset=["d"], freeze_llm=True), family)
    with pytest.raises(ConfigError, match="--aligner_lr is set but --freeze_aligner is true"):
        SftConfig(model="x", dataset=["d"], aligner_lr=1e-3)
    with pytest.raises(ConfigError, match="--min_pixels"):
        SftConfig(model="x", dataset=["d"], min_pixels=100, max_pixels=10)


def test_vit_lr_reaches_the_optimizer(smol_dir, tmp_path):
    """--vit_lr 0 with the tower unfrozen: the tower trains at rate 0 (unchanged) while the aligner moves."""
    model_dir = BUILDERS["llava"](smol_dir, tmp_path / "llava")
    data = _dataset(tmp_path, "llava")
    before = _weights(model_dir)
    out = tmp_path / "full"
    sft_main({"model": str(model_dir), "dataset": [str(data)], "output_dir": str(out), "max_steps": 1,
              "train_type": "full", "freeze_vit": False, "freeze_aligner": False, "freeze_llm": True,
              "vit_lr": 0.0, "aligner_lr": 0.01, "per_device_train_batch_size": 2, "learning_rate": 0.01,
              "warmup_ratio": 0.0, "weight_decay": 0.0, "report_to": ["none"], "torch_dtype": "float32",
              "save_steps": 100})
    after = _weights(out)
    changed = {name for name in before if not (before[name] == after[name]).all()}
    assert any("multi_modal_projector." in name for name in changed)
    assert not any("vision_tower." in name for name in changed)

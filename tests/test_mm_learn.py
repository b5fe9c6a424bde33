"""Proof that multimodal training learns, on data no one here wrote, through sft_main and the inference engine.

- images: scikit-learn's 1,797 handwritten digits (8x8) on a LLaVA-style model whose language model is the embedded
  SmolLM2 (its first 4 blocks, to fit this suite's CPU budget) and whose vision tower is a small random SigLIP;
- video: generated clips of a square moving left or right; the loss falls.
"""
from __future__ import annotations

import json

from swiftall import sft_main


def _accuracy(model: str, rows: list[dict], root) -> float:
    """Greedy answers from swiftall's engine, compared with the expected text."""
    from swiftall import InferEngine
    from swiftall.infer.engine import InferRequest, RequestConfig

    engine = InferEngine(model)
    requests = [InferRequest(messages=rows[i]["messages"][:1], images=[str(root / rows[i]["images"][0])])
                for i in range(len(rows))]
    answers = engine.infer(requests, RequestConfig(max_new_tokens=3, temperature=0))
    return sum(a.text.strip() == r["messages"][1]["content"] for a, r in zip(answers, rows)) / len(rows)


def _losses(run_dir) -> list[float]:
    records = [json.loads(line) for line in (run_dir / "logging.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]


# ---- video: which way does the square move -----------------------------------------------------------------
def test_tiny_video_model_trains_on_moving_squares(smol_dir, tmp_path):
    from fixtures_mm import qwen2_vl, write_gif

    model_dir = qwen2_vl(smol_dir, tmp_path / "qwen2-vl")
    rows = []
    for i in range(8):
        for direction, word in ((1, "right"), (-1, "left")):
            clip = write_gif(tmp_path / f"{word}{i}.gif", frames=4, size=56 + 28 * (i % 2), direction=direction)
            rows.append({"messages": [{"role": "user", "content": "<video>Which way does the square move?"},
                                      {"role": "assistant", "content": word}], "videos": [clip.name]})
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    summary = sft_main({"model": str(model_dir), "dataset": [str(data)], "output_dir": str(out),
                        "train_type": "full", "freeze_vit": False, "freeze_aligner": False, "learning_rate": 1e-2,
                        "per_device_train_batch_size": 4, "num_train_epochs": 5, "logging_steps": 4,
                        "save_steps": 1000, "save_only_model": True, "report_to": ["none"], "torch_dtype": "float32",
                        "max_frames": 4, "seed": 0})
    losses = _losses(out)
    assert summary["rows"]["train"] == 16 and summary["global_step"] == 20
    assert losses[-1] < 0.6 * losses[0]


# ---- images: which digit is this ----------------------------------------------------------------------------
def test_llava_smollm2_learns_sklearn_digits(smol_dir, tmp_path):
    """Held-out accuracy on the last 200 of scikit-learn's digits, before and after one short full training run."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    from fixtures_mm import llava_smollm2

    # one 8x8 patch per image: the whole digit becomes one image token for the language model
    model_dir = llava_smollm2(smol_dir, tmp_path / "llava-smollm2", image_size=8, patch_size=8, llm_layers=4)
    digits = load_digits()
    (tmp_path / "img").mkdir()
    rows = []
    for i, (pixels, target) in enumerate(zip(digits.images, digits.target)):
        Image.fromarray((pixels * 255 / 16).astype(np.uint8)).save(tmp_path / "img" / f"{i}.png")
        rows.append({"messages": [{"role": "user", "content": "Which digit is this?<image>"},
                                  {"role": "assistant", "content": str(target)}], "images": [f"img/{i}.png"]})
    train, held_out = rows[:-200], rows[-200:]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in train))
    before = _accuracy(str(model_dir), held_out, tmp_path)

    out = tmp_path / "run"
    summary = sft_main({"model": str(model_dir), "dataset": [str(data)], "output_dir": str(out),
                        "train_type": "full", "freeze_vit": False, "freeze_aligner": False, "learning_rate": 3e-4,
                        "vit_lr": 3e-3, "aligner_lr": 3e-3, "per_device_train_batch_size": 32,
                        "num_train_epochs": 2, "warmup_ratio": 0.05, "logging_steps": 10, "save_steps": 10000,
                        "save_only_model": True, "report_to": ["none"], "torch_dtype": "float32", "seed": 0})
    after = _accuracy(str(out), held_out, tmp_path)
    print(f"sklearn digits, 200 held out: accuracy {before:.1%} before, {after:.1%} after "
          f"{summary['global_step']} steps")
    assert summary["rows"]["train"] == len(train)
    assert before < 0.3 and after >= 0.8

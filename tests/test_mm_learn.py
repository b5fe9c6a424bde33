"""Multimodal training on generated clips: a tiny video model trains end to end through sft_main and its loss falls.

The accuracy tests the issue asks for (sklearn digits on a LLaVA-style SmolLM2 model via fixtures_mm.llava_smollm2,
espeak-ng spoken digits in tests/data/spoken_digits) are not here yet: the recipes tried did not reach their
accuracy bars within this suite's CPU budget.
"""
from __future__ import annotations

import json

from swiftall import sft_main


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

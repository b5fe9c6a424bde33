"""Proof that multimodal training learns, on data no one here wrote, through sft_main and the inference engine.

- images: scikit-learn's 1,797 handwritten digits (8x8) on a LLaVA-style model whose language model is the embedded
  SmolLM2 (its first 4 blocks, to fit this suite's CPU budget) and whose vision tower is a small random SigLIP;
- audio: the words zero..nine spoken by espeak-ng in 8 voices (tests/data/spoken_digits): a tiny random Qwen2-Audio
  model trained on 6 voices names the digits of the 2 voices it never heard far better than chance;
- video: generated clips of a square moving left or right; the loss falls.
"""
from __future__ import annotations

import json

from swiftall import sft_main


def _accuracy(model: str, rows: list[dict], root, kind: str = "images") -> float:
    """Greedy answers from swiftall's engine, compared with the expected text."""
    from swiftall import InferEngine
    from swiftall.infer.engine import InferRequest, RequestConfig

    engine = InferEngine(model)
    requests = [InferRequest(messages=r["messages"][:1], **{kind: [str(root / r[kind][0])]}) for r in rows]
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


# ---- audio: which digit is spoken ---------------------------------------------------------------------------
def _read_wav(path):
    import wave

    import numpy as np

    with wave.open(str(path)) as w:   # the shipped clips are 8-bit unsigned PCM
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.uint8).astype(np.float32) / 128 - 1, w.getframerate()


def _write_wav(path, samples, rate):
    import wave

    import numpy as np

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32000).astype(np.int16).tobytes())


def test_tiny_audio_model_learns_spoken_digits(smol_dir, tmp_path):
    """Voices 0-5 train (each clip also at 0.85x and 1.15x speed with faint noise), voices 6-7 are held out."""
    from pathlib import Path

    import numpy as np

    from fixtures_mm import qwen2_audio

    model_dir = qwen2_audio(smol_dir, tmp_path / "qwen2-audio", hidden=64, seconds=1)
    clips = sorted((Path(__file__).parent / "data" / "spoken_digits").glob("*.wav"))
    assert len(clips) == 80
    rng = np.random.default_rng(0)
    train, held_out = [], []
    for clip in clips:
        digit, voice = clip.stem.split("_v")
        question = {"role": "user", "content": "<audio>Which digit is spoken?"}
        row = {"messages": [question, {"role": "assistant", "content": digit}], "audios": [str(clip)]}
        if int(voice) >= 6:
            held_out.append(row)
            continue
        samples, rate = _read_wav(clip)
        for speed in (0.85, 1.0, 1.15):
            n = int(len(samples) / speed)
            stretched = np.interp(np.linspace(0, len(samples) - 1, n), np.arange(len(samples)), samples)
            _write_wav(tmp_path / f"{clip.stem}_{speed}.wav", stretched + rng.normal(0, 0.005, n), rate)
            train.append(dict(row, audios=[f"{clip.stem}_{speed}.wav"]))
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in train))
    before = _accuracy(str(model_dir), held_out, tmp_path, "audios")

    out = tmp_path / "run"
    summary = sft_main({"model": str(model_dir), "dataset": [str(data)], "output_dir": str(out),
                        "train_type": "full", "freeze_vit": False, "freeze_aligner": False, "learning_rate": 3e-3,
                        "per_device_train_batch_size": 16, "num_train_epochs": 20, "warmup_ratio": 0.05,
                        "logging_steps": 20, "save_steps": 100000, "save_only_model": True, "report_to": ["none"],
                        "torch_dtype": "float32", "seed": 0})
    after = _accuracy(str(out), held_out, tmp_path, "audios")
    print(f"spoken digits, 2 unheard voices (20 clips): accuracy {before:.0%} before, {after:.0%} after "
          f"{summary['global_step']} steps (chance 10%)")
    assert summary["rows"]["train"] == 180
    assert before <= 0.1 and after >= 0.3

"""Proof that alignment learns, on the embedded SmolLM2-135M-Instruct (CPU, offline)."""
from __future__ import annotations

import pytest

from rlhf_fixtures import preference_rows
from swiftall.train.callbacks import read_log

pytestmark = pytest.mark.slow


def _split(write_jsonl):
    rows = preference_rows()
    return write_jsonl(rows[:22], "train.jsonl"), write_jsonl(rows[22:], "val.jsonl")


def _evals(records, key):
    return [r[key] for r in records if key in r]


def test_dpo_learns_preferences(smol_dir, write_jsonl, tmp_path):
    from swiftall import dpo_main

    train, val = _split(write_jsonl)
    out = tmp_path / "dpo"
    summary = dpo_main(["--model", str(smol_dir), "--dataset", str(train), "--val_dataset", str(val),
                        "--max_steps", "6", "--per_device_train_batch_size", "4", "--learning_rate", "5e-4",
                        "--eval_steps", "6", "--per_device_eval_batch_size", "8", "--logging_steps", "1", "--save_steps", "3", "--report_to", "none",
                        "--beta", "0.1", "--output_dir", str(out)])
    records = read_log(out)
    train_logs = [r for r in records if "rewards/margins" in r]
    # before the first update the policy is the reference (LoRA B = 0): every implicit reward is 0
    assert train_logs[0]["rewards/margins"] == pytest.approx(0.0, abs=1e-6)
    assert train_logs[0]["rewards/accuracies"] == 0.0
    late = [r["rewards/margins"] for r in train_logs[-2:]]
    assert min(late) > 0.5, late                       # the logged margins grow
    held_out = _evals(records, "eval_rewards/accuracies")
    assert held_out[-1] >= 0.85, held_out               # unseen countries: chosen now beats rejected
    assert _evals(records, "eval_rewards/margins")[-1] > 0.5
    assert summary["global_step"] == 6
    assert (out / "adapter_config.json").is_file() and (out / "checkpoint-3").is_dir()
    assert (out / "images" / "rewards_margins.png").is_file()
    assert any("tokens_per_second" in r and "memory_peak_rss_gib" in r for r in records)

"""Scoring by generation during training (`--eval_dataset FILE --eval_steps K`) under 2 processes (gloo on this CPU),
run as a user runs it (`NPROC_PER_NODE=2 swiftall sft ...`): every rank enters each scoring (rank 0 generates, the
others wait for its scores), so the run finishes, each scored step leaves its report, and the scores and every
step's loss reach logging.jsonl. It used to die after the first scoring with a gloo collective mismatch: the scores'
log cleared the step's `should_log` on rank 0 alone, which then skipped the loss gather the other rank entered."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from swiftall import sft_main
from swiftall.train.callbacks import read_log

WORDS = "apple river stone cloud green quick silver table".split()
METRIC = "eval_codes/exact_match"


def codes(folder: Path) -> Path:
    path = folder / "codes.jsonl"
    path.write_text("".join(json.dumps({"query": f"Give the code name for: {w}", "response": f"Code name: {w}-{w}-77",
                                        "id": w}) + "\n" for w in WORDS))
    return path


def flags(model: Path, data: Path, out: Path, steps: int) -> list[str]:
    return ["--model", str(model), "--train_type", "lora", "--dataset", str(data), "--eval_dataset", str(data),
            "--eval_steps", "2", "--max_steps", str(steps), "--per_device_train_batch_size", "2",
            "--eval_generation_config", '{"max_tokens": 16}', "--logging_steps", "1", "--save_steps", "100",
            "--report_to", "none", "--output_dir", str(out)]


def assert_scored(out: Path, steps: int) -> None:
    """Each scored step (every 2 and the last) has its report, whose score is the one logged; every step its loss."""
    log = read_log(out)
    scored = [r for r in log if METRIC in r]
    assert [r["step"] for r in scored] == list(range(2, steps + 1, 2)), log
    for row in scored:
        report = json.loads((out / "eval" / f"step-{row['step']}" / "report.json").read_text())
        result = report["datasets"]["codes"]
        assert report["config"]["step"] == row["step"] and result["n"] == len(WORDS)
        assert result["metrics"]["exact_match"]["value"] == row[METRIC]
        assert 0.0 <= row[METRIC] <= 1.0 and "eval_codes/rougeL" in row
    assert [r["step"] for r in log if "loss" in r] == list(range(1, steps + 1))  # the scored steps' losses too


@pytest.mark.slow
@pytest.mark.parametrize("engine", [[], ["--deepspeed", "zero2"]], ids=["ddp", "zero2"])
def test_scoring_during_training_on_two_processes_finishes_and_logs_every_scored_step(tiny_dir, tmp_path, engine):
    if engine:
        pytest.importorskip("deepspeed")
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}
    env["NPROC_PER_NODE"] = "2"
    proc = subprocess.run([sys.executable, "-m", "swiftall.cli.main", "sft", *flags(tiny_dir, codes(tmp_path), out, 4),
                           *engine], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "launching 2 process(es)" in proc.stderr
    assert_scored(out, 4)
    assert (out / "adapter_model.safetensors").is_file()


def test_a_scored_step_keeps_its_loss_in_one_process(tiny_dir, tmp_path):
    out = tmp_path / "run"
    sft_main(flags(tiny_dir, codes(tmp_path), out, 2))
    assert_scored(out, 2)

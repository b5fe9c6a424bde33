"""Scoring by generation during training (`--eval_dataset FILE --eval_steps K`) under 2 processes (gloo on this CPU),
run as a user runs it (`NPROC_PER_NODE=2 swiftall sft ...`), under DDP, ZeRO-2 and ZeRO-3: every rank enters each
scoring (rank 0 generates, under ZeRO-3 with the weights every rank gathered; the others wait for its scores), so
the run finishes, each scored step leaves its report, and the scores and every step's loss reach logging.jsonl.
It used to die after the first scoring with a gloo collective mismatch: the scores' log cleared the step's
`should_log` on rank 0 alone, which then skipped the loss gather the other rank entered."""
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


def flags(model: Path, data: Path, out: Path, steps: int, every: int = 2) -> list[str]:
    return ["--model", str(model), "--train_type", "lora", "--dataset", str(data), "--eval_dataset", str(data),
            "--eval_steps", str(every), "--max_steps", str(steps), "--per_device_train_batch_size", "2",
            "--eval_generation_config", '{"max_tokens": 16}', "--logging_steps", "1", "--save_steps", "100",
            "--report_to", "none", "--output_dir", str(out)]


def assert_scored(out: Path, steps: list[int]) -> None:
    """Each scored step has its report, whose score is the one logged, and every item its answer (a generation that
    failed, e.g. on ZeRO-3 shards, is an item with an error); every training step keeps its loss."""
    log = read_log(out)
    scored = [r for r in log if METRIC in r]
    assert [r["step"] for r in scored] == steps, log
    for row in scored:
        report = json.loads((out / "eval" / f"step-{row['step']}" / "report.json").read_text())
        result = report["datasets"]["codes"]
        assert report["config"]["step"] == row["step"] and result["n"] == len(WORDS)
        assert result["metrics"]["exact_match"]["value"] == row[METRIC]
        assert 0.0 <= row[METRIC] <= 1.0 and "eval_codes/rougeL" in row
        answers = (out / "eval" / f"step-{row['step']}" / "predictions" / "codes.jsonl").read_text().splitlines()
        assert [a["completion_tokens"] > 0 and not a.get("error") for a in map(json.loads, answers)] == [True] * 8
    assert [r["step"] for r in log if "loss" in r] == list(range(1, steps[-1] + 1))  # the scored steps' too


# ZeRO-3: scored before the first step (the first forward ever, while ZeRO still traces its layers) and after each
ENGINES = {"ddp": ([], 2, [2, 4]), "zero2": (["--deepspeed", "zero2"], 2, [2, 4]),
           "zero3": (["--deepspeed", "zero3", "--eval_dataset_on_start", "true"], 1, [0, 1, 2, 3, 4])}


@pytest.mark.slow
@pytest.mark.parametrize("engine", [  # ZeRO-3: in 2 of 26 runs rank 1 aborted at exit after all was written (open,
    pytest.param(e, marks=pytest.mark.heavy) if e == "zero3" else e for e in ENGINES])  # issue 14), so not in CI
def test_scoring_during_training_on_two_processes_finishes_and_logs_every_scored_step(tiny_dir, tmp_path, engine):
    extra, every, steps = ENGINES[engine]
    if extra:
        pytest.importorskip("deepspeed", reason="DeepSpeed is not installed: pip install 'swiftall[deepspeed]'")
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}
    env["NPROC_PER_NODE"] = "2"
    proc = subprocess.run([sys.executable, "-m", "swiftall.cli.main", "sft",
                           *flags(tiny_dir, codes(tmp_path), out, 4, every), *extra], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "launching 2 process(es)" in proc.stderr
    assert_scored(out, steps)
    assert (out / "adapter_model.safetensors").is_file()


def test_a_scored_step_keeps_its_loss_in_one_process(tiny_dir, tmp_path):
    out = tmp_path / "run"
    sft_main(flags(tiny_dir, codes(tmp_path), out, 2))
    assert_scored(out, [2])


def test_a_failed_scoring_stops_the_run_with_rank_zeros_error(tiny_dir, tmp_path, monkeypatch):
    """Rank 0 shares its error before the others' next collective (they would wait for it until --ddp_timeout)."""
    from swiftall.pipelines import eval_training

    def broken(*args, **kwargs):
        raise ValueError("no answer")

    monkeypatch.setattr(eval_training, "evaluate", broken)
    with pytest.raises(RuntimeError, match="scoring --eval_dataset at step 2 failed on rank 0: ValueError: no answer"):
        sft_main(flags(tiny_dir, codes(tmp_path), tmp_path / "run", 2))

"""Training runs lose nothing: runs that fail their checks leave no output folder, checkpoints are whole or absent,
resume skips what an interrupted save left and says so, and a run killed with SIGKILL at several points completes
after resuming (tiny random model)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from swiftall.cli.main import main
from swiftall.utils.errors import ConfigError
from test_interrupts import ENV, ROWS, swiftall_log  # noqa: F401  (swiftall_log is a fixture)


# ---- runs that fail their checks write nothing ---------------------------------------------------------------------
def _failing_runs(tiny_dir: Path, root: Path) -> dict[str, tuple[list[str], str]]:
    sft_rows = root / "sft.jsonl"
    sft_rows.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"What is {i} + {i}?"}) + "\n" for i in range(4)))
    model = ["--model", str(tiny_dir)]
    return {
        "dataset path typo": (["sft", *model, "--dataset", str(root / "dtaa.jsonl")], "dtaa.jsonl"),
        "self-cognition without --model_author": (["sft", *model, "--dataset", "self-cognition", "--model_name",
                                                   "Swifty"], "--model_author"),
        "dpo on sft rows": (["dpo", *model, "--dataset", str(sft_rows)], str(sft_rows)),
        "grpo rows without the reward's column": (["rlhf", "--rlhf_type", "grpo", *model, "--dataset", str(prompts),
                                                   "--reward_funcs", "accuracy"], "'solution' column"),
    }


@pytest.mark.parametrize("case", ["dataset path typo", "self-cognition without --model_author", "dpo on sft rows",
                                  "grpo rows without the reward's column"])
def test_a_run_that_fails_its_checks_leaves_no_output_dir(case, tiny_dir, tmp_path, capsys, monkeypatch):
    import swiftall.models

    argv, expected = _failing_runs(tiny_dir, tmp_path)[case]
    out = tmp_path / "run"

    def no_weights(*args, **kwargs):
        raise AssertionError("the model was loaded before the data was checked")

    monkeypatch.setattr(swiftall.models, "load_model", no_weights)
    assert main([*argv, "--output_dir", str(out), "--max_steps", "1"]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err, err
    assert not out.exists()  # no args.json, no runs/: the corrected rerun is not refused as "not empty"


def test_output_dir_naming_a_file_is_refused_before_anything_loads(tiny_dir, tmp_path, capsys, monkeypatch):
    import swiftall.pipelines.sft as sft

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    taken = tmp_path / "notes.txt"
    taken.write_text("mine\n")

    def never(*args, **kwargs):
        raise AssertionError("loaded before --output_dir was checked")

    monkeypatch.setattr(sft, "model_info", never)
    assert main(["sft", "--model", str(tiny_dir), "--dataset", str(data), "--output_dir", str(taken)]) == 2
    err = capsys.readouterr().err
    assert f"--output_dir {taken}: a file of that name exists" in err
    assert taken.read_text() == "mine\n"


# ---- checkpoints: whole or absent ----------------------------------------------------------------------------------
def _fake_checkpoint(folder: Path, step: int, complete: bool = True) -> Path:
    folder.mkdir(parents=True)
    (folder / "optimizer.pt").write_bytes(b"\0" * 680)
    if complete:
        (folder / "adapter_model.safetensors").write_bytes(b"weights")
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return folder


def test_resume_skips_incomplete_checkpoints_and_says_so(tmp_path, swiftall_log):
    from swiftall.train.outputs import check_output_dir, resolve_resume

    run = tmp_path / "run"
    _fake_checkpoint(run / "checkpoint-2", 2)
    _fake_checkpoint(run / "checkpoint-4", 4, complete=False)  # written before saves were atomic
    _fake_checkpoint(run / ".saving-checkpoint-6" / "checkpoint-6", 6, complete=False)  # a save cut short
    assert resolve_resume(str(run)) == run / "checkpoint-2"
    said = swiftall_log.text
    assert "checkpoint-4 is incomplete (no trainer_state.json" in said and ".saving-checkpoint-6" in said
    with pytest.raises(ConfigError, match=f"incomplete.*pass the run folder {run}"):
        resolve_resume(str(run / "checkpoint-4"))
    with pytest.raises(ConfigError) as refused:  # the same command again on the interrupted run's folder
        check_output_dir(str(run), overwrite=False, resume=None)
    message = str(refused.value)
    assert f"--resume_from_checkpoint {run}" in message
    assert message.index("--resume_from_checkpoint") < message.index("--overwrite_output_dir")


def test_checkpoints_are_written_aside_and_renamed_when_whole(tiny_dir, tmp_path, monkeypatch):
    from transformers import Trainer

    from swiftall import sft_main

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    out = tmp_path / "run"
    seen = []
    save_rng = Trainer._save_rng_state

    def watch(self, output_dir):  # runs after the weights and optimizer, before trainer_state.json
        seen.append((Path(output_dir).relative_to(out).as_posix(), (out / Path(output_dir).name).exists()))
        save_rng(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", watch)
    sft_main({"model": str(tiny_dir), "dataset": [str(data)], "output_dir": str(out), "max_steps": 2,
              "save_steps": 1, "per_device_train_batch_size": 2, "report_to": ["none"]})
    assert seen == [(".saving-checkpoint-1/checkpoint-1", False), (".saving-checkpoint-2/checkpoint-2", False)]
    assert sorted(p.name for p in out.iterdir() if "checkpoint" in p.name) == ["checkpoint-1", "checkpoint-2"]
    for step in (1, 2):
        assert (out / f"checkpoint-{step}" / "trainer_state.json").is_file()
        assert (out / f"checkpoint-{step}" / "rng_state.pth").is_file()


def test_ctrl_c_while_a_checkpoint_is_written_then_resume(tiny_dir, tmp_path, monkeypatch, swiftall_log):
    from transformers import Trainer

    from swiftall import sft_main

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    run = tmp_path / "run"
    config = {"model": str(tiny_dir), "dataset": [str(data)], "output_dir": str(run), "max_steps": 3,
              "save_steps": 1, "per_device_train_batch_size": 2, "report_to": ["none"]}
    save_rng = Trainer._save_rng_state

    def ctrl_c_on_the_second_save(self, output_dir):
        if self.state.global_step == 2:
            raise KeyboardInterrupt
        save_rng(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", ctrl_c_on_the_second_save)
    with pytest.raises(KeyboardInterrupt):
        sft_main(config)
    assert not (run / "checkpoint-2").exists() and (run / ".saving-checkpoint-2").is_dir()
    assert f"checkpoint-1 is the last complete checkpoint: rerun the same command with --resume_from_checkpoint " \
           f"{run}" in swiftall_log.text
    monkeypatch.setattr(Trainer, "_save_rng_state", save_rng)
    summary = sft_main({**config, "resume_from_checkpoint": str(run)})
    assert summary["global_step"] == 3
    assert sorted(p.name for p in run.iterdir() if "checkpoint" in p.name) == ["checkpoint-1", "checkpoint-2",
                                                                               "checkpoint-3"]


# ---- SIGKILL at several points, resumed each time ------------------------------------------------------------------
SLOW_SAVES = """
import sys, time
import transformers
pause = float(sys.argv.pop(1))
save_rng = transformers.Trainer._save_rng_state
def slow(self, output_dir):  # weights and optimizer are written; trainer_state.json not yet
    time.sleep(pause)
    save_rng(self, output_dir)
transformers.Trainer._save_rng_state = slow
from swiftall.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _start_sft(argv: list, pause: float, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SLOW_SAVES, str(pause), *map(str, argv)], env=ENV, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_when(process: subprocess.Popen, ready, timeout: float = 300) -> str:
    deadline = time.time() + timeout
    while not ready():
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.time() < deadline, "the run never reached the point to kill it at"
        time.sleep(0.02)
    process.kill()  # SIGKILL: no handler, no cleanup
    return process.communicate()[0]


@pytest.mark.slow
def test_sigkill_at_several_points_then_resume_completes(tiny_dir, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    run = tmp_path / "run"
    argv = ["sft", "--model", tiny_dir, "--dataset", data, "--output_dir", run, "--max_steps", "6", "--save_steps",
            "2", "--per_device_train_batch_size", "2", "--logging_steps", "1", "--report_to", "none"]

    # 1. killed while checkpoint-4 is written (its weights and optimizer on disk, trainer_state.json not yet)
    staged = run / ".saving-checkpoint-4" / "checkpoint-4"
    _kill_when(_start_sft(argv, 2.0, tmp_path), lambda: (staged / "optimizer.pt").is_file())
    assert not (run / "checkpoint-4").exists() and (run / "checkpoint-2" / "trainer_state.json").is_file()

    # 2. the same command again offers to resume first
    again = subprocess.run([sys.executable, "-m", "swiftall", *map(str, argv)], env=ENV, cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert again.stderr.index(f"--resume_from_checkpoint {run}") < again.stderr.index("--overwrite_output_dir")

    # 3. resumed from checkpoint-2, killed as soon as checkpoint-4 is whole
    resume = [*argv, "--resume_from_checkpoint", run]
    output = _kill_when(_start_sft(resume, 0.0, tmp_path), lambda: (run / "checkpoint-4").is_dir())
    assert ".saving-checkpoint-4" in output and "interrupted" in output  # the cut-short save was named and skipped

    # 4. resumed from checkpoint-4, runs to the end
    done = subprocess.run([sys.executable, "-m", "swiftall", *map(str, resume)], env=ENV, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "FileNotFoundError" not in done.stderr and "Traceback" not in done.stderr
    assert json.loads((run / "checkpoint-6" / "trainer_state.json").read_text())["global_step"] == 6
    assert sorted(p.name for p in run.iterdir() if "checkpoint" in p.name) == ["checkpoint-2", "checkpoint-4",
                                                                               "checkpoint-6"]
    assert (run / "adapter_model.safetensors").is_file()
    steps = [r["step"] for r in map(json.loads, (run / "logging.jsonl").read_text().splitlines()) if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]  # each step logged once across the three processes


@pytest.mark.slow  # about 40 s on 2 shared cores
def test_trl_trainers_write_checkpoints_whole_too(tiny_dir, tmp_path, monkeypatch):
    from transformers import Trainer

    from swiftall import dpo_main

    out = tmp_path / "dpo"
    staged = []
    save_rng = Trainer._save_rng_state

    def watch(self, output_dir):
        staged.append(Path(output_dir).parent.name)
        save_rng(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", watch)
    dpo_main({"model": str(tiny_dir), "dataset": ["preference-demo"], "output_dir": str(out), "max_steps": 2,
              "save_steps": 1, "per_device_train_batch_size": 2, "report_to": ["none"]})
    assert staged == [".saving-checkpoint-1", ".saving-checkpoint-2"]
    assert sorted(p.name for p in out.iterdir() if "checkpoint" in p.name) == ["checkpoint-1", "checkpoint-2"]
    assert (out / "checkpoint-2" / "trainer_state.json").is_file()

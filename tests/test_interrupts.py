"""Interrupts and failed runs lose nothing: Ctrl-C in the chat and in batch infer, no thread left running at exit
(status 134, 'terminate called without an active exception'), checkpoints whole or absent, resume after SIGKILL,
and runs that fail their checks leave no output folder behind."""
from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from swiftall.cli.main import main
from swiftall.utils.errors import ConfigError

ROWS = [{"messages": [{"role": "user", "content": f"Say {w}"}, {"role": "assistant", "content": f"{w} {w}!"}]}
        for w in ["apple", "river", "stone", "cloud", "green", "quick", "silver", "table"]]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def swiftall(*args: str) -> list[str]:
    return [sys.executable, "-m", "swiftall", *map(str, args)]


def engine_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("swiftall-") and t.is_alive()]


@pytest.fixture(scope="module")
def long_dir(tmp_path_factory, smol_dir) -> Path:
    """A tiny random llama with a long context, so an answer runs for as long as a test needs to interrupt it."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(smol_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=65536,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    out = tmp_path_factory.mktemp("long-llama")
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture
def swiftall_log(caplog):
    """swiftall's log records (its logger does not propagate to the root logger that caplog watches)."""
    logger = logging.getLogger("swiftall")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


# ---- the terminal chat ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", ["true", "false"])
def test_ctrl_c_stops_the_answer_then_quits_at_the_prompt_with_130(long_dir, stream, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(sys.executable, swiftall("infer", "--model", long_dir, "--stream", stream, "--temperature",
                                                    "0", "--max_new_tokens", "60000")[1:],
                          env=ENV, cwd=tmp_path, encoding="utf-8", timeout=120)
    child.logfile_read = seen = io.StringIO()
    try:
        child.expect_exact("<<< ")
        child.sendline("tell me a very long story")
        if stream == "true":
            child.expect_exact(">>> ")  # the answer has started coming
        time.sleep(1.5)
        child.sendintr()
        child.expect_exact("(answer stopped", timeout=30)
        child.expect_exact("<<< ", timeout=30)  # back at the prompt, the process alive
        child.sendintr()
        child.expect(pexpect.EOF, timeout=60)
    finally:
        child.close(force=True)
    output = seen.getvalue()
    assert child.exitstatus == 130, (child.exitstatus, child.signalstatus, output[-2000:])
    assert "terminate called" not in output and "Traceback" not in output


def test_chat_goes_on_after_a_stopped_answer(tiny_dir):
    """The stopped turn is forgotten; the next question is answered in the same conversation."""
    from swiftall.infer import RequestConfig
    from swiftall.infer.chat import run_chat
    from swiftall.pipelines.infer import InferEngine

    engine = InferEngine(str(tiny_dir))
    asked = []
    real_infer = engine.infer

    def infer(requests, config=None):
        asked.append([m["content"] for m in requests[0].messages])
        if len(asked) == 1:
            raise KeyboardInterrupt  # Ctrl-C while the first answer is generated
        return real_infer(requests, config)

    lines, output = ["first", "second", "/exit"], []
    engine.infer = infer
    history = run_chat(engine, RequestConfig(max_new_tokens=3, temperature=0), stream=False,
                       read=lambda prompt: lines.pop(0), write=output.append)
    engine.close()
    assert asked == [["first"], ["second"]]
    assert [m["content"] for m in history if m["role"] == "user"] == ["second"]
    assert any("answer stopped" in line for line in output)


def test_ctrl_c_at_the_prompt_raises_and_ctrl_d_returns(tiny_dir):
    from swiftall.infer import RequestConfig
    from swiftall.infer.chat import run_chat
    from swiftall.pipelines.infer import InferEngine

    engine = InferEngine(str(tiny_dir))

    def interrupted(prompt):
        raise KeyboardInterrupt

    def ended(prompt):
        raise EOFError

    with pytest.raises(KeyboardInterrupt):
        run_chat(engine, RequestConfig(max_new_tokens=3), read=interrupted, write=lambda text: None)
    assert run_chat(engine, RequestConfig(max_new_tokens=3), read=ended, write=lambda text: None) == []
    engine.close()


# ---- engine threads ------------------------------------------------------------------------------------------------
def test_close_with_cancel_ends_a_long_answer_and_joins_the_thread(long_dir):
    from swiftall.infer import RequestConfig
    from swiftall.pipelines.infer import InferEngine

    engine = InferEngine(str(long_dir))
    answers = engine.start("tell me a long story", RequestConfig(max_new_tokens=60000, temperature=0))
    while not answers[0].completion_tokens:
        time.sleep(0.01)
    started = time.time()
    engine.close(cancel=True)
    assert time.time() - started < 10
    assert answers[0].done.is_set() and answers[0].finish_reason == "cancelled"
    assert 0 < answers[0].completion_tokens < 60000
    assert not engine_threads()


def test_batch_infer_leaves_no_thread_running(tiny_dir, write_jsonl, tmp_path):
    from swiftall import infer_main

    data = write_jsonl([{"query": f"question {i}"} for i in range(3)])
    before = set(threading.enumerate())
    rows = infer_main(["--model", str(tiny_dir), "--val_dataset", str(data), "--result_path",
                       str(tmp_path / "r.jsonl"), "--max_new_tokens", "3"])
    assert len(rows) == 3
    assert not set(threading.enumerate()) - before  # a daemon thread inside torch at exit aborts with status 134


def test_batch_infer_ctrl_c_keeps_the_answers_made_and_exits_130(long_dir, write_jsonl, tmp_path):
    data = write_jsonl([{"query": f"question {i}", "id": i} for i in range(200)])
    result = tmp_path / "answers.jsonl"
    process = subprocess.Popen(swiftall("infer", "--model", long_dir, "--val_dataset", data, "--result_path", result,
                                        "--max_new_tokens", "48", "--max_batch_size", "1", "--temperature", "0"),
                               env=ENV, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 180
    while time.time() < deadline and process.poll() is None:
        if result.is_file() and result.read_text().count("\n") >= 2:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output[-2000:]
    assert "terminate called" not in output and "Traceback" not in output
    kept = [json.loads(line) for line in result.read_text().splitlines()]
    assert 2 <= len(kept) < 200
    assert [r["id"] for r in kept] == list(range(len(kept)))  # in the rows' order, none lost in between
    assert all(r["response"] for r in kept)
    assert f"{len(kept)} of 200 answers written" in output


@pytest.fixture(scope="module")
def qwen_batch(smol_dir, tmp_path_factory) -> tuple[Path, Path]:
    """A tiny random Qwen2-VL and three rows with an image each."""
    from fixtures_mm import BUILDERS, write_image

    root = tmp_path_factory.mktemp("qwen2_vl_batch")
    model = BUILDERS["qwen2_vl"](smol_dir, root / "model")
    rows = []
    for i in range(3):
        write_image(root / f"{i}.png", seed=i)
        rows.append({"messages": [{"role": "user", "content": "<image>What is it?"}], "images": [f"{i}.png"]})
    data = root / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return model, data


def test_multimodal_batch_infer_leaves_no_thread_running(qwen_batch, tmp_path):
    from swiftall import infer_main

    model, data = qwen_batch
    before = set(threading.enumerate())
    rows = infer_main(["--model", str(model), "--val_dataset", str(data), "--result_path", str(tmp_path / "r.jsonl"),
                       "--max_new_tokens", "4"])
    assert len(rows) == 3
    assert not set(threading.enumerate()) - before


def test_batch_infer_on_a_multimodal_model_exits_0(qwen_batch, tmp_path):
    model, data = qwen_batch
    done = subprocess.run(swiftall("infer", "--model", model, "--val_dataset", data, "--result_path",
                                   tmp_path / "r.jsonl", "--max_new_tokens", "16"),
                          env=ENV, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "terminate called" not in done.stderr
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 3


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

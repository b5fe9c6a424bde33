"""Interrupts lose nothing: Ctrl-C in the terminal chat stops the answer (and quits at the prompt with 130), Ctrl-C in
batch infer keeps the answers made, and no engine thread is left running at exit (which aborted the process with
status 134, 'terminate called without an active exception'). Training runs: test_run_safety.py."""
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
from child_signals import sigint_default


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
@pytest.mark.slow  # a real process: 10-45 s on 2 shared cores
@pytest.mark.parametrize("stream", ["true", "false"])
def test_ctrl_c_stops_the_answer_then_quits_at_the_prompt_with_130(long_dir, stream, tmp_path):
    import pexpect  # the [test] extra
    child = pexpect.spawn(sys.executable, swiftall("infer", "--model", long_dir, "--stream", stream, "--temperature",
                                                    "0", "--max_new_tokens", "60000")[1:],
                          env=ENV, cwd=tmp_path, encoding="utf-8", timeout=120, preexec_fn=sigint_default)
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

    before = set(engine_threads())  # other tests' dropped engines may still be idling out
    engine = InferEngine(str(long_dir))
    answers = engine.start("tell me a long story", RequestConfig(max_new_tokens=60000, temperature=0))
    while not answers[0].completion_tokens:
        time.sleep(0.01)
    started = time.time()
    engine.close(cancel=True)
    assert time.time() - started < 10
    assert answers[0].done.is_set() and answers[0].finish_reason == "cancelled"
    assert 0 < answers[0].completion_tokens < 60000
    assert not set(engine_threads()) - before


def test_batch_infer_leaves_no_thread_running(tiny_dir, write_jsonl, tmp_path):
    from swiftall import infer_main

    data = write_jsonl([{"query": f"question {i}"} for i in range(3)])
    before = set(threading.enumerate())
    rows = infer_main(["--model", str(tiny_dir), "--val_dataset", str(data), "--result_path",
                       str(tmp_path / "r.jsonl"), "--max_new_tokens", "3"])
    assert len(rows) == 3
    assert not set(threading.enumerate()) - before  # a daemon thread inside torch at exit aborts with status 134


@pytest.mark.slow  # a real process: 10-45 s on 2 shared cores
def test_batch_infer_ctrl_c_keeps_the_answers_made_and_exits_130(long_dir, write_jsonl, tmp_path):
    data = write_jsonl([{"query": f"question {i}", "id": i} for i in range(200)])
    result = tmp_path / "answers.jsonl"
    process = subprocess.Popen(swiftall("infer", "--model", long_dir, "--val_dataset", data, "--result_path", result,
                                        "--max_new_tokens", "48", "--max_batch_size", "1", "--temperature", "0"),
                               env=ENV, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=sigint_default)
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


def test_close_with_cancel_stops_a_multimodal_generate(qwen_batch):
    """Requests with media decode in the continuous batch beside text ones; cancel reaches them too."""
    from swiftall.infer import InferRequest, RequestConfig
    from swiftall.pipelines.infer import InferEngine

    model, data = qwen_batch
    before = set(engine_threads())
    engine = InferEngine(str(model))
    request = InferRequest(messages=[{"role": "user", "content": "<image>Describe it at length."}],
                           images=[str(data.parent / "0.png")])
    answers = engine.start(request, RequestConfig(max_new_tokens=3000, temperature=0, ignore_eos=True))
    queued = engine.start(request, RequestConfig(max_new_tokens=3000, temperature=0, ignore_eos=True))
    time.sleep(1.0)
    engine.close(cancel=True)
    assert answers[0].finish_reason == "cancelled" and answers[0].completion_tokens < 3000
    assert queued[0].finish_reason == "cancelled" and queued[0].completion_tokens < 3000
    assert not set(engine_threads()) - before


@pytest.mark.slow  # a real process: 10-45 s on 2 shared cores
def test_batch_infer_on_a_multimodal_model_exits_0(qwen_batch, tmp_path):
    model, data = qwen_batch
    done = subprocess.run(swiftall("infer", "--model", model, "--val_dataset", data, "--result_path",
                                   tmp_path / "r.jsonl", "--max_new_tokens", "16"),
                          env=ENV, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "terminate called" not in done.stderr
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 3


def test_a_dropped_engine_ends_its_thread_once_idle(tiny_dir, monkeypatch):
    """An engine a script never closes must not keep a thread (and through it the model) alive forever."""
    import gc
    import weakref

    from swiftall.infer import RequestConfig, scheduler
    from swiftall.pipelines.infer import InferEngine

    monkeypatch.setattr(scheduler, "IDLE_EXIT_S", 0.5)
    engine = InferEngine(str(tiny_dir))
    before = set(engine_threads())
    answers = engine.start("hi", RequestConfig(max_new_tokens=2, temperature=0))
    answers[0].done.wait(60)
    model = weakref.ref(engine.engine.model if hasattr(engine, "engine") else engine.model)
    del engine, answers
    deadline = time.time() + 10
    while set(engine_threads()) - before and time.time() < deadline:
        time.sleep(0.1)
    assert not set(engine_threads()) - before
    gc.collect()
    assert model() is None


def _deploy_and_interrupt(long_dir: Path, tmp_path: Path, presses: int) -> tuple[int, str, list[str]]:
    """deploy on a free port, a streamed answer of 3000 tokens in flight, then `presses` Ctrl-C 1 s apart."""
    import socket

    import httpx

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    process = subprocess.Popen(swiftall("deploy", "--model", long_dir, "--port", port, "--served_model_name", "m"),
                               env=ENV, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=sigint_default)
    output: list[str] = []
    threading.Thread(target=lambda: output.extend(process.stdout), daemon=True).start()
    deadline = time.time() + 180
    while not any("serving 'm'" in line for line in output) and time.time() < deadline and process.poll() is None:
        time.sleep(0.1)
    ends: list[str] = []

    def ask() -> None:
        body = {"model": "m", "messages": [{"role": "user", "content": "go"}], "max_tokens": 3000, "stream": True,
                "temperature": 0, "ignore_eos": True}
        try:
            with httpx.stream("POST", f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=300) as r:
                ends.extend(line for line in r.iter_lines() if '"finish_reason":"' in line.replace(" ", ""))
        except httpx.HTTPError as exc:
            ends.append(type(exc).__name__)

    client = threading.Thread(target=ask)
    client.start()
    time.sleep(2)
    for _ in range(presses):
        process.send_signal(signal.SIGINT)
        time.sleep(1)
    code = process.wait(timeout=300)
    client.join(timeout=60)
    time.sleep(0.2)
    return code, "".join(output), ends


@pytest.mark.slow  # two deploy processes of a tiny model
def test_deploy_ctrl_c_once_finishes_the_answer_and_twice_cuts_it_off_quietly(long_dir, tmp_path):
    code, output, ends = _deploy_and_interrupt(long_dir, tmp_path, presses=1)
    assert code == 130 and "Traceback" not in output, output[-3000:]
    assert len(ends) == 1 and '"length"' in ends[0].replace(" ", ""), ends   # the answer in flight was finished
    code, output, ends = _deploy_and_interrupt(long_dir, tmp_path, presses=2)
    assert code == 130 and "second Ctrl-C" in output, output[-3000:]
    assert "Traceback" not in output and "Event loop is closed" not in output, output[-3000:]

"""`swiftall infer` on the terminal (multi-turn, /clear, /exit) and the settings around it (tiny model)."""
import json

import pytest

from swiftall import infer_main
from swiftall.cli.main import main
from swiftall.utils.errors import ConfigError, DataError


class Terminal:
    def __init__(self, lines):
        self.lines = list(lines)
        self.output = []

    def read(self, prompt):
        if not self.lines:
            raise EOFError
        return self.lines.pop(0)

    def write(self, text):
        self.output.append(text)


@pytest.mark.parametrize("stream", [False, True])
def test_chat_is_multi_turn_and_clear_forgets(tiny_dir, monkeypatch, stream):
    from swiftall.infer import RequestConfig
    from swiftall.infer.chat import run_chat
    from swiftall.pipelines.infer import InferEngine

    engine = InferEngine(str(tiny_dir))
    seen = []
    original = engine.infer, engine.stream

    def spy_infer(requests, config=None):
        seen.append([m["content"] for m in requests[0].messages])
        return original[0](requests, config)

    def spy_stream(request, config=None):
        seen.append([m["content"] for m in request.messages])
        return original[1](request, config)

    monkeypatch.setattr(engine, "infer", spy_infer)
    monkeypatch.setattr(engine, "stream", spy_stream)
    terminal = Terminal(["first question", "second question", "/clear", "fresh start", "/exit", "never read"])
    history = run_chat(engine, RequestConfig(max_new_tokens=4, temperature=0), stream=stream,
                       read=terminal.read, write=terminal.write)
    assert seen[0] == ["first question"]
    assert seen[1][0] == "first question" and seen[1][-1] == "second question" and len(seen[1]) == 3
    assert seen[2] == ["fresh start"]  # /clear dropped the earlier turns
    assert len(seen) == 3 and terminal.lines == ["never read"]  # /exit stopped reading
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert any("cleared" in line for line in terminal.output)


def test_batch_rows_must_end_with_a_user_turn(tiny_dir, write_jsonl, tmp_path):
    data = write_jsonl([{"messages": [{"role": "system", "content": "s"}]}])
    with pytest.raises(DataError, match=rf"{data}:1"):
        infer_main(["--model", str(tiny_dir), "--val_dataset", str(data), "--result_path", str(tmp_path / "r.jsonl")])


def test_infer_needs_a_model_or_adapters():
    with pytest.raises(ConfigError, match="--model"):
        infer_main(["--max_new_tokens", "3"])


def test_adapters_folder_without_args_or_adapter_config_is_explained(tmp_path):
    with pytest.raises(ConfigError, match="cannot tell its base model"):
        infer_main(["--adapters", str(tmp_path)])


def test_download_offline_is_one_clear_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert main(["download", "--model", "someorg/missing-model"]) == 2
    err = capsys.readouterr().err
    assert "someorg/missing-model" in err and "Traceback" not in err


def test_threads_follow_the_cpus_this_process_may_use():
    import torch

    from swiftall.models.device import configure_threads
    from swiftall.utils.env import usable_cpus

    assert configure_threads() == usable_cpus() == torch.get_num_threads()


def test_flash_attention_request_falls_back_on_cpu():
    from swiftall.models.device import resolve_attn

    assert resolve_attn("flash_attention_2") == "sdpa"
    assert resolve_attn(None) == "sdpa" and resolve_attn("eager") == "eager"


def test_validation_split_logs_eval_loss(tiny_dir, write_jsonl, tmp_path):
    from swiftall import sft_main

    rows = [{"query": f"q{i}", "response": f"answer number {i}"} for i in range(12)]
    out = tmp_path / "run"
    summary = sft_main({"model": str(tiny_dir), "dataset": [str(write_jsonl(rows))], "output_dir": str(out),
                        "split_dataset_ratio": 0.25, "max_steps": 4, "eval_steps": 2, "save_steps": 100,
                        "per_device_train_batch_size": 2, "report_to": ["none"]})
    assert summary["rows"] == {"train": 9, "val": 3, "dropped": 0}
    evals = [r for r in map(json.loads, (out / "logging.jsonl").read_text().splitlines()) if "eval_loss" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert (out / "images" / "eval_loss.png").is_file()


def test_chat_asks_for_media_per_tag_and_keeps_going_after_an_error(tiny_dir, tmp_path):
    from swiftall.infer import RequestConfig
    from swiftall.infer.chat import run_chat
    from swiftall.pipelines.infer import InferEngine

    engine = InferEngine(str(tiny_dir))  # a text-only model: media must be refused, not dropped
    terminal = Terminal(["What is <image> next to <audio>?", "cat.png", "purr.wav", "Just text", "/exit"])
    history = run_chat(engine, RequestConfig(max_new_tokens=3, temperature=0), stream=False,
                       read=terminal.read, write=terminal.write)
    assert any(line.startswith("error:") and "text-only" in line for line in terminal.output)
    assert [m["content"] for m in history if m["role"] == "user"] == ["Just text"]  # the failed turn is not kept


def test_chat_sends_media_with_the_conversation(tiny_dir):
    from swiftall.infer import InferResponse, RequestConfig
    from swiftall.infer.chat import run_chat

    class Recorder:
        def __init__(self):
            self.requests = []

        def infer(self, requests, config=None):
            self.requests.append(requests[0])
            return [InferResponse(text="ok", finish_reason="stop", prompt_tokens=1, completion_tokens=1)]

    engine = Recorder()
    terminal = Terminal(["<video>Which way does it move?", "clip.gif", "And <image>?", "still.png", "/exit"])
    run_chat(engine, RequestConfig(), stream=False, read=terminal.read, write=terminal.write)
    first, second = engine.requests
    assert first.videos == ["clip.gif"] and first.images == []
    assert second.videos == ["clip.gif"] and second.images == ["still.png"]  # earlier media stay with the history
    assert [m["role"] for m in second.messages] == ["user", "assistant", "user"]

"""swiftall webui without a browser: its config, run processes (argument lists, detached process groups, stop by
SIGINT -> SIGTERM -> SIGKILL), run discovery from folders, YAML loading, port and auth checks."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from swiftall.config import SftConfig, WebuiConfig
from swiftall.utils.errors import ConfigError
from swiftall.webui import forms
from swiftall.webui.runlist import list_runs, log_tail, metric_frame
from swiftall.webui.runs import RunManager

FAST_STOP = ((signal.SIGINT, 3.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0))


def wait_for(predicate, timeout=60.0, every=0.2, show=None):
    """predicate()'s first true value; on timeout the assertion says what `show()` saw last."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s" + (f"; last seen: {show()!r}" if show else ""))


def python_run(manager: RunManager, program: str, run_id: str) -> dict:
    return manager.start_argv([sys.executable, "-c", textwrap.dedent(program)], "test", [], run_id=run_id)


# ---- config ---------------------------------------------------------------------------------------------
def test_seed_form_and_defaults():
    cfg = WebuiConfig.from_any(["--model_path", "some/dir", "--model_type", "smollm2-135m-instruct", "--port", "7861"])
    assert (cfg.model, cfg.model_type, cfg.port, cfg.host, cfg.lang, cfg.share) == (
        "some/dir", "smollm2-135m-instruct", 7861, "127.0.0.1", "en", False)


def test_auth_values_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="user:password"):
        WebuiConfig.from_any(["--auth", "nopassword"])
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("# team\nann:secret1\nbob:secret2\n")
    cfg = WebuiConfig.from_any(["--auth", "me:pw", "--auth_file", str(accounts)])
    assert cfg.section("webui").credentials() == [("me", "pw"), ("ann", "secret1"), ("bob", "secret2")]
    accounts.write_text("ann\n")
    with pytest.raises(ConfigError, match=r"accounts.txt:1: expected user:password"):
        WebuiConfig.from_any(["--auth_file", str(accounts)]).section("webui").credentials()


def test_port_in_use_is_one_clear_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "swiftall", "webui", "--port", str(port), "--runs_dir",
                                 str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"--port {port} is in use" in result.stderr and "Traceback" not in result.stderr


def test_webui_help_imports_neither_torch_nor_gradio():
    code = ("import sys; from swiftall.cli.main import main; main(['webui', '--help']); "
            "print('LOADED', [m for m in ('torch', 'gradio') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "--auth_file" in out and "LOADED []" in out


# ---- forms -> argument lists ----------------------------------------------------------------------------
def test_form_values_become_literal_arguments():
    values = forms.flag_values(SftConfig, ["model", "dataset", "learning_rate", "max_steps", "system"],
                               ["; rm -rf /", "a.jsonl 'my data.jsonl'", 1e-4, 4.0, "$(touch pwned)"])
    args = forms.to_args(values, "--warmup_ratio 0.1")
    assert args == ["--model", "; rm -rf /", "--dataset", "a.jsonl", "my data.jsonl", "--learning_rate", "0.0001",
                    "--max_steps", "4", "--system", "$(touch pwned)", "--warmup_ratio", "0.1"]
    assert forms.as_command("sft", args).startswith("swiftall sft --model '; rm -rf /'")


def test_yaml_round_trip_and_unknown_keys():
    args = ["--model", "smollm2-135m-instruct", "--dataset", "d.jsonl", "--learning_rate", "2e-4"]
    text = forms.as_yaml(SftConfig, args)
    assert forms.load_yaml(SftConfig, text) == {"model": "smollm2-135m-instruct", "dataset": ["d.jsonl"],
                                                "learning_rate": 2e-4}
    with pytest.raises(ConfigError, match="did you mean --learning_rate"):
        forms.load_yaml(SftConfig, "model: m\ndataset: [d]\nlerning_rate: 1e-4\n", source="run.yaml")
    with pytest.raises(ConfigError, match="run.yaml: cannot parse"):
        forms.load_yaml(SftConfig, "model: [unclosed\n", source="run.yaml")


def test_shell_text_in_a_form_never_runs(tmp_path):
    """A value like '; touch FILE' reaches the command as one literal argument: the run fails on it, nothing runs."""
    manager = RunManager(tmp_path / "runs")
    marker = tmp_path / "pwned"
    record = manager.start("sft", ["--model", f"; touch {marker}", "--dataset", f"$(touch {marker})",
                                   "--output_dir", str(tmp_path / "runs" / "r")])
    wait_for(lambda: manager.read(record["id"]).get("returncode") is not None, timeout=120)
    assert manager.read(record["id"])["returncode"] == 2
    argv = manager.read(record["id"])["argv"]
    assert argv[argv.index("--model") + 1] == f"; touch {marker}"  # one argument, as typed
    log = Path(record["log"]).read_text()
    assert f"; touch {marker}" in log and "error" in log
    assert not marker.exists()


# ---- processes ------------------------------------------------------------------------------------------
STUBBORN = """
    import signal, subprocess, sys, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)          # ignores Ctrl-C: only SIGTERM ends it
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print("child", child.pid, flush=True)
    time.sleep(600)
"""


def test_stop_escalates_and_leaves_no_process(tmp_path):
    import psutil

    manager = RunManager(tmp_path)
    record = python_run(manager, STUBBORN, "stubborn")
    child_pid = int(wait_for(lambda: "child" in Path(record["log"]).read_text() and
                             Path(record["log"]).read_text().split()[1]))
    assert manager.status(manager.read("stubborn")) == "running" and manager.memory_mb(manager.read("stubborn")) > 5
    result = manager.stop("stubborn", waits=FAST_STOP)
    assert result.signals == ["SIGINT", "SIGTERM"] and result.gone and result.freed_mb > 5
    assert not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
    assert manager.status(manager.read("stubborn")) == "stopped"
    assert "every process of the run is gone" in result.message()


def test_run_outlives_its_manager_and_is_found_again(tmp_path):
    """A fresh RunManager (a restarted web UI) finds a run the old one started, sees it running and can stop it."""
    program = "import time; print('working', flush=True); time.sleep(600)"
    first = RunManager(tmp_path)
    record = first.start_argv([sys.executable, "-c", program], "test", [], run_id="long")
    assert os.getpgid(record["pid"]) == record["pid"] != os.getpgid(0)  # its own process group
    del first
    again = RunManager(tmp_path)
    assert [(v.id, v.status) for v in list_runs(again)] == [("long", "running")]
    wait_for(lambda: "working" in log_tail(list_runs(again)[0]))
    assert again.stop("long", waits=FAST_STOP).gone
    assert again.status(again.read("long")) == "stopped"


def test_exit_codes_are_recorded(tmp_path):
    manager = RunManager(tmp_path)
    python_run(manager, "print('ok')", "good")
    python_run(manager, "import sys; sys.exit(3)", "bad")
    wait_for(lambda: all(manager.read(i).get("returncode") is not None for i in ("good", "bad")))
    states = {v.id: v.status for v in list_runs(manager)}
    assert states == {"good": "finished", "bad": "failed (exit 3)"}


def test_command_line_runs_are_listed_from_their_folders(tmp_path):
    run = tmp_path / "cli-run"
    (run / "checkpoint-2").mkdir(parents=True)
    (run / "args.json").write_text(json.dumps({"command": "sft", "model": "m"}))
    logs = [{"step": 1, "loss": 2.5, "learning_rate": 1e-4}, {"step": 2, "loss": 2.1, "learning_rate": 5e-5}]
    (run / "logging.jsonl").write_text("".join(json.dumps(r) + "\n" for r in logs) + '{"step": 3, "lo')
    os.utime(run / "logging.jsonl", (time.time() - 3600, time.time() - 3600))
    (view,) = list_runs(RunManager(tmp_path))
    assert (view.id, view.command, view.status, view.step, view.last_loss, view.checkpoints) == (
        "cli-run", "sft", "incomplete", 2, 2.1, ["checkpoint-2"])
    frame = metric_frame(view)
    assert sorted(frame[frame.metric == "loss"].value) == [2.1, 2.5]
    (run / "adapter_config.json").write_text("{}")
    assert list_runs(RunManager(tmp_path))[0].status == "finished"


def test_resume_restarts_from_the_latest_checkpoint(tmp_path, monkeypatch):
    manager = RunManager(tmp_path)
    folder = tmp_path / "run"
    for step in (2, 10, 4):
        (folder / f"checkpoint-{step}").mkdir(parents=True)
    python_run(manager, "pass", "run")
    wait_for(lambda: manager.read("run").get("returncode") is not None and not manager.alive(manager.read("run")))
    from swiftall.webui.supervise import update

    update(manager.record_path("run"), command="sft", output_dir=str(folder),
           args=["--model", "m", "--resume_from_checkpoint", "old", "--max_steps", "20"])
    started = []
    monkeypatch.setattr(manager, "start_argv", lambda argv, command, args, output_dir, run_id, extra: started.append(
        (command, args, output_dir, run_id)) or {"id": run_id})
    manager.resume("run")
    assert started == [("sft", ["--model", "m", "--max_steps", "20", "--resume_from_checkpoint",
                                str(folder / "checkpoint-10")], str(folder), "run")]


def test_deploy_tab_url_and_curl_example():
    from swiftall.webui.tabs.deploy import curl_example, server_url

    args = ["--model", "smollm2-135m-instruct", "--host", "0.0.0.0", "--port", "8011", "--api_key", "k"]
    url = server_url(args)
    assert url == "http://127.0.0.1:8011"
    curl = curl_example(url, args)
    assert curl.startswith("curl http://127.0.0.1:8011/v1/chat/completions") and "Bearer $API_KEY" in curl
    assert '"model": "smollm2-135m-instruct"' in curl and server_url([]) == "http://127.0.0.1:8000"

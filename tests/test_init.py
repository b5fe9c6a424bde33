"""swiftall init: driven in a pseudo-terminal (pexpect) choosing fine-tune on the embedded model, the YAML it writes
run by `swiftall sft --config`; --yes; Ctrl-C at a prompt leaves no file; machines and models that fit nothing."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from child_signals import sigint_default

pexpect = pytest.importorskip("pexpect")

SWIFTALL = [sys.executable, "-m", "swiftall"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "TOKENIZERS_PARALLELISM": "false"}


def spawn(args, cwd):
    return pexpect.spawn(sys.executable, ["-m", "swiftall", "init", *args], cwd=str(cwd), env=ENV,
                         encoding="utf-8", timeout=240, preexec_fn=sigint_default)


def init(args, cwd):
    return subprocess.run([*SWIFTALL, "init", *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)


def test_yes_writes_a_config_for_the_embedded_model_that_sft_accepts(tmp_path):
    done = init(["--yes"], tmp_path)
    assert done.returncode == 0, done.stderr
    written = yaml.safe_load((tmp_path / "swiftall.yaml").read_text())
    assert written["model"] == "smollm2-135m-instruct" and written["dataset"] == ["swiftall-demo"]
    assert "swiftall sft --config swiftall.yaml" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["swiftall.yaml"]
    from swiftall.config import SftConfig

    cfg = SftConfig.from_any({"config": str(tmp_path / "swiftall.yaml")})
    assert cfg.torch_dtype == "float32" and cfg.max_length == written["max_length"]


def test_ctrl_c_at_a_prompt_leaves_no_file(tmp_path):
    child = spawn([], tmp_path)
    child.expect("What do you want to do")
    child.expect(r"\[2\]: ")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert list(tmp_path.iterdir()) == []


def test_a_memory_size_that_fits_nothing_says_the_smallest_need(tmp_path):
    done = init(["--yes", "--device", "cuda", "--memory_gb", "0.3"], tmp_path)
    assert done.returncode == 2 and "no registered model fits" in done.stderr
    assert "at the least" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_model_offline_is_named(tmp_path):
    done = init(["--yes", "--model", "no-such-org/no-such-model"], tmp_path)
    assert done.returncode == 2 and "no-such-org/no-such-model" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_file_init_did_not_write_is_not_overwritten(tmp_path):
    (tmp_path / "swiftall.yaml").write_text("mine: true\n")
    done = init(["--yes"], tmp_path)
    assert done.returncode == 2 and "was not written by swiftall init" in done.stderr
    assert (tmp_path / "swiftall.yaml").read_text() == "mine: true\n"


@pytest.mark.slow
def test_the_wizard_in_a_terminal_chooses_fine_tune_and_sft_runs_its_config(tmp_path):
    child = spawn([], tmp_path)
    child.expect("CPU: ")
    child.expect("What do you want to do")
    child.expect(r"\[2\]: ")
    child.sendline("finetune")
    child.expect("What does the model read")
    child.sendline("1")
    child.expect("Registered models for this goal")
    child.expect("Which model")
    child.expect(r"\[1\]: ")
    child.sendline("")
    child.expect("Run it with:")
    child.expect("swiftall sft --config swiftall.yaml")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    config = tmp_path / "swiftall.yaml"
    assert yaml.safe_load(config.read_text())["model"] == "smollm2-135m-instruct"
    out = tmp_path / "run"
    done = subprocess.run([*SWIFTALL, "sft", "--config", str(config), "--max_steps", "1", "--max_length", "64",
                           "--output_dir", str(out), "--report_to", "none", "--save_steps", "100"], cwd=tmp_path,
                          env=ENV, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "args.json").is_file() and (out / "logging.jsonl").is_file()
    assert Path(out / "model.safetensors").is_file() or (out / "adapter_config.json").is_file()

"""The command line: help without torch, flag errors with suggestions, aliases, --config files."""
import subprocess
import sys
import time

import pytest

from swiftall.cli.main import main
from swiftall.config import ExportConfig, InferConfig, SftConfig
from swiftall.utils.errors import ConfigError


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "swiftall", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("argv", [["--help"], ["sft", "--help"], ["infer", "--help"], ["export", "--help"]])
def test_help_is_fast_and_does_not_import_torch(argv):
    code = ("import sys, time; t = time.time(); from swiftall.cli.main import main; main(%r); "
            "assert 'torch' not in sys.modules, 'torch imported'; print('took', time.time() - t)" % argv)
    started = time.time()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert time.time() - started < 5  # the whole interpreter; the help itself is printed below
    assert float(out.stdout.strip().split()[-1]) < 1.0


def test_command_help_lists_flags_with_help_text():
    out = run_cli("sft", "--help")
    assert out.returncode == 0
    for flag in ("--lora_rank", "--truncation_strategy", "--resume_from_checkpoint", "--report_to", "--config"):
        assert flag in out.stdout
    assert "LoRA rank" in out.stdout and "--sft_type" in out.stdout  # help text and aliases shown


def test_unknown_flag_suggests_the_right_one(capsys):
    assert main(["sft", "--model", "m", "--datset", "d.jsonl"]) == 2
    err = capsys.readouterr().err
    assert "unknown flag --datset" in err and "did you mean --dataset?" in err
    assert "Traceback" not in err


def test_unknown_command_suggests(capsys):
    assert main(["inferr"]) == 2
    assert "did you mean infer" in capsys.readouterr().err


def test_ms_swift_aliases_map_to_the_same_fields():
    cfg = SftConfig.from_any(["--model_id_or_path", "m", "--custom_train_dataset_path", "a.jsonl",
                              "--lora_dropout_p", "0.2", "--sft_type", "full", "--use_flash_attn", "true",
                              "--use_hf", "false"])
    assert cfg.model == "m" and cfg.dataset == ["a.jsonl"] and cfg.lora_dropout == 0.2
    assert cfg.train_type == "full" and cfg.attn_impl == "flash_attention_2" and cfg.hub == "modelscope"
    assert SftConfig.from_any(["--model_path", "m", "--train_dataset", "x"]).model == "m"
    assert InferConfig.from_any(["--ckpt_dir", "out/run"]).adapters == ["out/run"]


def test_config_file_with_flag_override(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: m\ndataset: [a.jsonl]\nlora_rank: 4\nsft_type: full\n")
    cfg = SftConfig.from_any(["--config", str(path), "--lora_rank", "16"])
    assert cfg.lora_rank == 16 and cfg.train_type == "full" and cfg.dataset == ["a.jsonl"]
    path.write_text("model: m\nlora_rnak: 4\n")
    with pytest.raises(ConfigError, match="did you mean --lora_rank"):
        SftConfig.from_any(["--config", str(path)])


def test_config_takes_dict_and_object():
    cfg = SftConfig.from_any({"model": "m", "dataset": "a.jsonl", "max_steps": "3"})
    assert cfg.dataset == ["a.jsonl"] and cfg.max_steps == 3
    assert SftConfig.from_any(cfg) is cfg


@pytest.mark.parametrize("argv, message", [
    (["--model", "m", "--dataset", "a", "--learning_rate", "fast"], "--learning_rate"),
    (["--model", "m", "--dataset", "a", "--truncation_strategy", "middle"], "--truncation_strategy"),
    (["--model", "m", "--dataset", "a", "--lora_rank", "0"], "--lora_rank"),
    (["--model", "m", "--dataset", "a", "--report_to", "mlflowx"], "--report_to"),
    (["--dataset", "a"], "--model is required"),
    (["--model", "m"], "--dataset is required"),
])
def test_bad_values_name_the_flag(argv, message):
    with pytest.raises(ConfigError, match=message):
        SftConfig.from_any(argv)


def test_export_needs_adapters():
    with pytest.raises(ConfigError, match="--adapters"):
        ExportConfig.from_any(["--merge_lora", "true"])


def test_cli_error_is_one_clean_line():
    out = run_cli("sft", "--model", "no/such-model-xyz", "--dataset", "swiftall-demo", "--output_dir", "/tmp/never")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "no/such-model-xyz" in out.stderr

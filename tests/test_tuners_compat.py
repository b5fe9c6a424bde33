"""The compatibility check refuses each unsupported combination before anything loads, with the reason and a
choice that works; `swiftall tuners` prints the matrix; non-mergeable adapter folders are refused by export."""
import json

import pytest

from swiftall.cli.main import main
from swiftall.config import PtConfig, RlhfConfig, SftConfig
from swiftall.tuners.adapters import check_mergeable
from swiftall.tuners.compat import check_compat
from swiftall.tuners.quant import check_quant
from swiftall.utils.errors import ConfigError, MissingDependencyError


def sft(**flags):
    return SftConfig.from_any({"model": "m", "dataset": ["d.jsonl"], **flags})


REFUSED = [
    (dict(train_type="boft", quant_method="bnb", quant_bits=4), None, "boft cannot train over quantized weights"),
    (dict(train_type="lora", quant_method="bnb", quant_bits=4, init_weights="pissa"), None, "rewrites the base"),
    (dict(train_type="reft", gradient_checkpointing=True), None, "--gradient_checkpointing false"),
    (dict(train_type="lora", use_galore=True), None, "GaLore projects the gradients of full weights"),
    (dict(train_type="full", use_galore=True), "deepspeed", "--use_galore under deepspeed"),
    (dict(train_type="lisa"), "deepspeed", "--train_type lisa under deepspeed: not supported"),
    (dict(train_type="adalora"), "fsdp", "--train_type adalora under fsdp: not supported"),
    (dict(train_type="ia3", lorap_lr_ratio=16), None, "use it with --train_type lora, not ia3"),
    (dict(train_type="vera", use_dora=True), None, "--use_dora is a LoRA variant"),
    (dict(train_type="loha", init_weights="olora"), None, "is a LoRA initialisation"),
    (dict(train_type="adapter", target_regex=".*q_proj"), None, "does not take it"),
    (dict(train_type="prompt", packing=True), None, "add --packing false"),
    (dict(train_type="prefix", padding_free=True), None, "add --padding_free false"),
]


@pytest.mark.parametrize("flags,mode,says", REFUSED, ids=[str(i) for i in range(len(REFUSED))])
def test_refused_combinations_name_the_reason(flags, mode, says):
    cfg = sft(**flags)
    if mode:
        setattr(cfg, mode, "on")
    with pytest.raises(ConfigError, match=says.replace("(", r"\(").replace(")", r"\)")):
        check_compat(cfg, "sft")


def test_loftq_says_it_needs_a_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="loftq needs a GPU"):
        check_compat(sft(train_type="lora", init_weights="loftq"), "sft")


def test_quantized_full_training_is_refused_by_the_config():
    with pytest.raises(ConfigError, match="use --train_type lora"):
        sft(train_type="full", quant_method="bnb", quant_bits=4)


def test_pt_packs_by_default_so_prompt_tuning_needs_packing_off():
    cfg = PtConfig.from_any({"model": "m", "dataset": ["c.txt"], "train_type": "prompt"})
    assert cfg.packing is True
    with pytest.raises(ConfigError, match="add --packing false"):
        check_compat(cfg, "pt")
    cfg = PtConfig.from_any({"model": "m", "dataset": ["c.txt"], "train_type": "prompt", "packing": False})
    check_compat(cfg, "pt")
    assert cfg.padding_free is False   # padded rows: virtual tokens go before each row


def test_rlhf_takes_peft_tuners_only():
    cfg = RlhfConfig.from_any({"model": "m", "dataset": ["p.jsonl"], "train_type": "llamapro"})
    with pytest.raises(ConfigError, match="alignment trainers take full, lora"):
        check_compat(cfg, "rlhf")
    cfg = RlhfConfig.from_any({"model": "m", "dataset": ["p.jsonl"], "train_type": "lora", "init_weights": "eva"})
    with pytest.raises(ConfigError, match="train with it in swiftall sft"):
        check_compat(cfg, "rlhf")
    assert check_compat(RlhfConfig.from_any({"model": "m", "dataset": ["p.jsonl"], "train_type": "vera"}),
                        "rlhf").name == "vera"


@pytest.mark.parametrize("flags,says", [
    (dict(quant_method="eetq", quant_bits=8), "needs a GPU"),
    (dict(quant_method="aqlm", quant_bits=2), "give --model an AQLM-quantized folder"),
    (dict(quant_method="quanto", quant_bits=3), "takes --quant_bits 2, 4 or 8"),
])
def test_quant_methods_say_what_they_need_before_loading(flags, says, tmp_path):
    import torch

    if torch.cuda.is_available() and says == "needs a GPU":
        pytest.skip("a GPU is present")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=says):
        check_quant(sft(**flags), tmp_path)


@pytest.mark.parametrize("method,bits", [("hqq", 4), ("quanto", 8)])
def test_hqq_and_quanto_train_lora_only(method, bits, tmp_path):
    pytest.importorskip("hqq" if method == "hqq" else "optimum.quanto")
    (tmp_path / "config.json").write_text("{}")
    check_quant(sft(quant_method=method, quant_bits=bits), tmp_path)  # runs on a CPU: nothing to refuse
    with pytest.raises(ConfigError, match=f"peft wraps {method}'s quantized layers for LoRA only"):
        check_compat(sft(train_type="ia3", quant_method=method, quant_bits=bits), "sft")
    assert check_compat(sft(train_type="lora", quant_method=method, quant_bits=bits), "sft").name == "lora"


def test_a_missing_quant_package_is_named(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name.startswith("optimum") else
                        real(name, *a))
    with pytest.raises(MissingDependencyError, match="pip install 'optimum-quanto'"):
        check_quant(sft(quant_method="quanto", quant_bits=8), tmp_path)


@pytest.mark.parametrize("config,tuner", [({"peft_type": "PROMPT_TUNING"}, "prompt"),
                                          ({"swiftall_tuner": "adapter", "adapter_length": 8}, "adapter"),
                                          ({"swiftall_tuner": "reft"}, "reft")])
def test_export_refuses_tuners_that_cannot_be_merged(config, tuner, tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=f"a {tuner} adapter cannot be merged"):
        check_mergeable([str(tmp_path)])
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    check_mergeable([str(tmp_path)])


def test_tuners_command_prints_the_matrix(capsys):
    assert main(["tuners"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line and line.split()[0].isidentifier()}
    assert {"lora", "qlora"} - set(lines) == {"qlora"}
    assert lines["lora"][1:5] == ["yes", "yes", "ddp,deepspeed,fsdp", "yes"]
    assert lines["reft"][2] == "no" and lines["prompt"][4] == "no" and lines["galore"][3] == "ddp"


def test_cli_refuses_before_loading(capsys):
    code = main(["sft", "--model", "smollm2-135m-instruct", "--dataset", "nowhere.jsonl", "--train_type", "lokr",
                 "--quant_method", "bnb", "--quant_bits", "4"])
    assert code == 2
    assert "lokr cannot train over quantized weights" in capsys.readouterr().err

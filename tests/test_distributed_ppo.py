"""PPO (`swiftall rlhf --rlhf_type ppo`, swiftall's own trainer) on 2 processes (gloo on this CPU), run as a user runs
it: under DDP and ZeRO-2 each process samples the rollouts of its share of the prompts, the run trains (the policy's
LoRA B matrices leave their zeros) and saves an adapter and value head that load; ZeRO-3 is refused before any
process starts."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rlhf_fixtures import addition_rows
from swiftall.cli.main import main
from swiftall.train.callbacks import read_log

PLUGIN = ('reward_funcs = {"chars": lambda prompts, completions, **_: '
          '[len(c[0]["content"]) / 10 for c in completions]}\n')


def ppo_flags(model, tmp_path) -> list[str]:
    data, plugin = tmp_path / "add.jsonl", tmp_path / "plug.py"
    data.write_text("".join(json.dumps(r) + "\n" for r in addition_rows(8)))
    plugin.write_text(PLUGIN)  # a reward that differs between completions: a tenth of their length in characters
    return ["rlhf", "--rlhf_type", "ppo", "--model", str(model), "--dataset", str(data), "--reward_funcs", "chars",
            "--plugin", str(plugin), "--max_completion_length", "6", "--temperature", "1.0", "--learning_rate",
            "1e-2", "--warmup_ratio", "0", "--logging_steps", "1", "--seed", "0", "--report_to", "none",
            "--max_steps", "3", "--per_device_train_batch_size", "2", "--save_steps", "100"]


@pytest.mark.slow
@pytest.mark.parametrize("engine", [[], ["--deepspeed", "zero2"]], ids=["ddp", "zero2"])
def test_ppo_on_two_processes_trains_and_saves_a_policy_and_value_head_that_load(tiny_dir, tmp_path, engine):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    if engine:
        pytest.importorskip("deepspeed", reason="DeepSpeed is not installed: pip install 'swiftall[deepspeed]'")
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}
    env["NPROC_PER_NODE"] = "2"
    proc = subprocess.run([sys.executable, "-m", "swiftall.cli.main", *ppo_flags(tiny_dir, tmp_path), *engine,
                           "--output_dir", str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "launching 2 process(es)" in proc.stderr
    steps = [r for r in read_log(out) if "reward" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    assert all(r["reward"] > 0 and r["loss"] == r["loss"] and r["grad_norm"] > 0 for r in steps), steps
    adapter = load_file(str(out / "adapter_model.safetensors"))
    assert any(k.endswith("lora_B.weight") and v.abs().max() > 0 for k, v in adapter.items())
    head = torch.load(out / "value_head.pt")
    assert head and all(torch.isfinite(v).all() for v in head.values())
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_dir), out)


def test_ppo_under_zero3_is_refused_before_any_process_starts(tiny_dir, tmp_path, monkeypatch, capsys):
    pytest.importorskip("deepspeed", reason="DeepSpeed is not installed: pip install 'swiftall[deepspeed]'")
    for name in ("LOCAL_RANK", "WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(subprocess, "call", lambda *a, **k: pytest.fail("a process was started"))
    assert main([*ppo_flags(tiny_dir, tmp_path), "--nproc_per_node", "2", "--deepspeed", "zero3_offload",
                 "--output_dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "--deepspeed zero3_offload (ZeRO-3) with --rlhf_type ppo: not supported" in err
    assert "use --deepspeed zero2 or plain DDP" in err

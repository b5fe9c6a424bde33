"""Scale-out beyond causal-LM sft: rlhf (DPO, GRPO rollouts), a multimodal model and QLoRA under 2 processes (DDP,
gloo on this CPU), each run as a user runs it (`NPROC_PER_NODE=2 swiftall ...`). Scoring --eval_dataset during
training under several processes (ZeRO-3 included): tests/test_distributed_eval.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import chat
from rlhf_fixtures import addition_rows, preference_rows

BASE = ["--model", "m", "--dataset", "d.jsonl"]
STEADY = ["--lr_scheduler_type", "constant", "--warmup_ratio", "0", "--logging_steps", "1", "--report_to", "none",
          "--save_steps", "100"]


def _swiftall(command: str, out: Path, processes: int, *flags: str) -> str:
    """`swiftall COMMAND ... --output_dir OUT` in its own process, under torchrun when processes > 1; its stderr."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "NPROC_PER_NODE")}
    if processes > 1:
        env["NPROC_PER_NODE"] = str(processes)
    proc = subprocess.run([sys.executable, "-m", "swiftall.cli.main", command, *STEADY, *flags, "--output_dir",
                           str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    if processes > 1:
        assert f"launching {processes} process(es)" in proc.stderr
    return proc.stderr


def _log(out: Path, key: str) -> list[float]:
    rows = [json.loads(line) for line in (out / "logging.jsonl").read_text().splitlines()]
    return [r[key] for r in rows if key in r and "train_loss" not in r]


def _adapter(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out / "adapter_model.safetensors"))


def assert_same_losses(one: Path, two: Path, steps: int, keys: tuple[str, ...] = ("loss",)) -> None:
    """Per-step losses (and `keys`) within 1e-3 relative, and the run trained."""
    for key in keys:
        a, b = _log(one, key), _log(two, key)
        assert len(a) == len(b) == steps, (key, a, b)
        assert all(abs(x - y) <= 1e-3 * abs(x) + 1e-6 for x, y in zip(a, b)), (key, a, b)
    losses = _log(one, "loss")
    assert losses[0] != losses[-1]


def adapter_gap(one: Path, two: Path) -> tuple[float, str]:
    """The largest difference between the two trained adapters, relative to each tensor's largest entry (Adam turns
    the summation-order noise of near-zero gradients into +-lr steps on a few entries: seen up to 1.6e-3)."""
    wa, wb = _adapter(one), _adapter(two)
    assert sorted(wa) == sorted(wb) and wa
    assert any(name.endswith("lora_B.weight") and wa[name].abs().max() > 0 for name in wa)  # B moved off its zeros
    return max((float((wa[n] - wb[n]).abs().max() / wa[n].abs().max()), n) for n in wa)


def _load_adapter(base: Path, out: Path, model_cls=None):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    return PeftModel.from_pretrained((model_cls or AutoModelForCausalLM).from_pretrained(base), out)


@pytest.mark.slow
def test_dpo_on_two_processes_trains_like_one_process_with_the_double_batch(tiny_dir, tmp_path):
    data = tmp_path / "pref.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in preference_rows()[:16]))
    flags = ["--rlhf_type", "dpo", "--model", str(tiny_dir), "--dataset", str(data), "--max_steps", "4",
             "--learning_rate", "1e-2"]
    _swiftall("rlhf", tmp_path / "one", 1, *flags, "--per_device_train_batch_size", "4")
    _swiftall("rlhf", tmp_path / "two", 2, *flags, "--per_device_train_batch_size", "2")
    assert_same_losses(tmp_path / "one", tmp_path / "two", 4, ("loss", "rewards/margins"))
    gap, name = adapter_gap(tmp_path / "one", tmp_path / "two")  # TRL's DPO turns dropout off itself
    assert gap <= 1e-2, (name, gap)
    _load_adapter(tiny_dir, tmp_path / "two")


REWARD_PLUGIN = """import json, os
from swiftall.train.rlhf.rewards import register_reward


@register_reward('short_by_rank')
def short_by_rank(prompts, completions, **kw):
    with open(os.path.join({folder!r}, f"scored-rank{{os.environ['RANK']}}.jsonl"), "a") as f:
        f.write(json.dumps([c[0]['content'] for c in completions]) + "\\n")
    return [-len(c[0]['content']) / 10 for c in completions]
"""


@pytest.mark.slow
def test_grpo_on_two_processes_samples_on_each_rank_and_saves_an_adapter_that_loads(tiny_dir, tmp_path):
    """Each rank samples and scores the completions of its own prompts (the reward plugin records which rank scored
    what); TRL gathers the rewards to normalise each prompt's group. Not compared with 1 process: the completions are
    sampled, and which process samples which prompt changes the random draws, so rewards and losses differ."""
    data = tmp_path / "add.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in addition_rows(16)))
    plugin = tmp_path / "plug.py"
    plugin.write_text(REWARD_PLUGIN.format(folder=str(tmp_path)))
    out = tmp_path / "grpo"
    _swiftall("rlhf", out, 2, "--rlhf_type", "grpo", "--model", str(tiny_dir), "--dataset", str(data),
              "--max_steps", "2", "--per_device_train_batch_size", "2", "--num_generations", "2",
              "--max_completion_length", "6", "--reward_funcs", "short_by_rank", "--plugin", str(plugin))
    for rank in (0, 1):
        scored = [json.loads(line) for line in (tmp_path / f"scored-rank{rank}.jsonl").read_text().splitlines()]
        assert sum(map(len, scored)) == 2 * 2, scored  # 2 steps x its 2 completions: it sampled its own rollouts
    assert len(_log(out, "reward")) == 2 and json.loads((out / "trainer_state.json").read_text())["global_step"] == 2
    model = _load_adapter(tiny_dir, out)
    assert any("lora_A" in name for name, _ in model.named_parameters())


@pytest.mark.slow
def test_multimodal_lora_on_two_processes_trains_like_one_process_with_the_double_batch(smol_dir, tmp_path):
    from fixtures_mm import qwen2_vl, write_image
    from transformers import Qwen2VLForConditionalGeneration

    model_dir = qwen2_vl(smol_dir, tmp_path / "qwen2-vl")
    rows = []
    for i in range(16):  # two image sizes: a different number of image tokens in the same batch
        image = write_image(tmp_path / f"{i}.png", size=(56 + 28 * (i % 2), 56), seed=i)
        rows.append({**chat("<image>Which picture is this?", f"Picture number {i}. " * (1 + i % 3)),
                     "images": [image.name]})
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    flags = ["--model", str(model_dir), "--dataset", str(data), "--train_type", "lora", "--max_steps", "3",
             "--learning_rate", "1e-2", "--torch_dtype", "float32", "--lora_dropout", "0"]  # masks: per process
    _swiftall("sft", tmp_path / "one", 1, *flags, "--per_device_train_batch_size", "4")
    _swiftall("sft", tmp_path / "two", 2, *flags, "--per_device_train_batch_size", "2")
    assert_same_losses(tmp_path / "one", tmp_path / "two", 3)
    _load_adapter(model_dir, tmp_path / "two", Qwen2VLForConditionalGeneration)
    gap, name = adapter_gap(tmp_path / "one", tmp_path / "two")
    assert gap <= 1e-2, (name, gap)  # with --lora_dropout 0.05 (the default): 1.8, each process draws its own masks


@pytest.mark.slow
def test_qlora_runs_on_two_processes_with_the_base_quantized_on_each(tiny_dir, tmp_path):
    pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(chat(f"What is {i} plus {i}?", f"{i} plus {i} is {2 * i}.")) + "\n"
                            for i in range(16)))
    out = tmp_path / "qlora"
    err = _swiftall("sft", out, 2, "--model", str(tiny_dir), "--dataset", str(data), "--train_type", "lora",
                    "--quant_method", "bnb", "--quant_bits", "4", "--max_steps", "3", "--learning_rate", "1e-2",
                    "--per_device_train_batch_size", "2")
    assert "base loaded quantized (bnb, 4-bit)" in err
    losses = _log(out, "loss")
    assert len(losses) == 3 and losses[0] != losses[-1]
    assert json.loads((out / "adapter_config.json").read_text())["peft_type"] == "LORA"
    _load_adapter(tiny_dir, out)

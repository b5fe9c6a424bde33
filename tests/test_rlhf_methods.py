"""Every method runs end to end on a tiny model and writes sft's outputs with its own metrics."""
from __future__ import annotations

import json

import pytest

from rlhf_fixtures import addition_rows, preference_rows
from swiftall.train.callbacks import read_log


def _run(tiny_dir, tmp_path, name, data, *flags):
    from swiftall import rlhf_main

    out = tmp_path / name
    summary = rlhf_main(["--model", str(tiny_dir), "--dataset", str(data), "--rlhf_type", name, "--max_steps", "2",
                         "--per_device_train_batch_size", "2", "--logging_steps", "1", "--report_to", "none",
                         "--max_completion_length", "6", "--output_dir", str(out), *flags])
    assert summary["global_step"] == 2
    assert json.loads((out / "args.json").read_text())["rlhf_type"] == name
    assert (out / "images" / "loss.png").is_file()
    return out, read_log(out)


@pytest.mark.parametrize("name,key", [("orpo", "rewards/margins"), ("rm", "accuracy")])  # learning: test_rlhf_learn
def test_offline_methods(tiny_dir, write_jsonl, tmp_path, name, key):
    rows = preference_rows()[:8]
    out, log = _run(tiny_dir, tmp_path, name, write_jsonl(rows))
    assert any(key in r for r in log), log[0]
    assert (out / "adapter_config.json").is_file()


def test_grpo_and_ppo_with_plugin_reward(tiny_dir, write_jsonl, tmp_path):
    data = write_jsonl(addition_rows(8))
    plugin = tmp_path / "plug.py"
    plugin.write_text("from swiftall.train.rlhf.rewards import register_reward\n"  # the pipeline runs it once
                      "@register_reward('short')\n"
                      "def short(prompts, completions, **kw):\n"
                      "    return [-len(c[0]['content']) / 10 for c in completions]\n")
    _, log = _run(tiny_dir, tmp_path, "grpo", data, "--num_generations", "2", "--reward_funcs", "accuracy", "short",
                  "--plugin", str(plugin))
    assert any("reward" in r and "kl" in r for r in log)
    out, log = _run(tiny_dir, tmp_path, "ppo", data, "--reward_funcs", "short", "--plugin", str(plugin))
    steps = [r for r in log if "objective/kl" in r]
    assert len(steps) == 2 and all(abs(r["kl"]) < 1e3 for r in steps)
    assert (out / "value_head.pt").is_file() and (out / "adapter_config.json").is_file()

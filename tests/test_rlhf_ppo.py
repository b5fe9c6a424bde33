"""PPO on transformers' Trainer (tiny random llama, CPU): gradient accumulation gives the update of the whole batch,
checkpoints are checkpoint-N folders that infer reads, and --resume_from_checkpoint continues the run where it was
(policy, value head, optimizer, schedule and random state restored)."""
from __future__ import annotations

import json

import pytest

from rlhf_fixtures import addition_rows
from swiftall.train.callbacks import read_log
from swiftall.train.rlhf.rewards import register_reward


def chars(prompts: list, completions: list, **_: object) -> list[float]:
    """A deterministic reward that differs between completions: a tenth of the completion's length in characters."""
    return [len(c[0]["content"]) / 10 for c in completions]


register_reward("ppo_test_chars", chars)


def _ppo(tiny_dir, data, out, *flags: str) -> tuple[dict, dict[int, dict]]:
    """A PPO run; returns the summary and the logged training steps by step (the last record of each)."""
    from swiftall import rlhf_main

    summary = rlhf_main(["--rlhf_type", "ppo", "--model", str(tiny_dir), "--dataset", str(data),
                         "--reward_funcs", "ppo_test_chars", "--max_completion_length", "6", "--temperature", "1.0",
                         "--learning_rate", "1e-3", "--warmup_ratio", "0", "--logging_steps", "1", "--seed", "0",
                         "--report_to", "none", "--output_dir", str(out), *flags])
    return summary, {r["step"]: r for r in read_log(out) if "reward" in r}


def _weights(folder) -> dict:
    import torch
    from safetensors.torch import load_file

    found = load_file(str(folder / "adapter_model.safetensors"))
    found.update({f"value_head.{k}": v for k, v in torch.load(folder / "value_head.pt").items()})
    return found


def test_gradient_accumulation_gives_the_update_of_the_whole_batch(tiny_dir, write_jsonl, tmp_path, monkeypatch):
    import torch
    from accelerate.optimizer import AcceleratedOptimizer

    grads = []
    step = AcceleratedOptimizer.step

    def spy(self, *args, **kwargs):  # the gradients each optimizer step applies, in parameter order
        grads.append([p.grad.detach().clone() for group in self.optimizer.param_groups for p in group["params"]
                      if p.grad is not None])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(AcceleratedOptimizer, "step", spy)
    data = write_jsonl(addition_rows(8))
    _, whole = _ppo(tiny_dir, data, tmp_path / "whole", "--max_steps", "1", "--per_device_train_batch_size", "4")
    _, accumulated = _ppo(tiny_dir, data, tmp_path / "accumulated", "--max_steps", "1",
                          "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "2")
    assert len(grads) == 2 and len(grads[0]) == len(grads[1]) > 0
    assert sum(float(g.abs().sum()) for g in grads[0]) > 0, "the first step had no gradient to compare"
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-7)
    assert whole[1]["loss"] != 0 and whole[1]["grad_norm"] > 0
    for key in ("reward", "kl", "loss", "grad_norm", "loss/policy", "loss/value", "policy/clipfrac", "val/clipfrac"):
        assert accumulated[1][key] == pytest.approx(whole[1][key], rel=1e-4, abs=1e-7), key
    one_batch, two_halves = _weights(tmp_path / "whole"), _weights(tmp_path / "accumulated")
    assert one_batch.keys() == two_halves.keys()
    for name, value in one_batch.items():
        torch.testing.assert_close(two_halves[name], value, rtol=1e-4, atol=1e-6, msg=name)
    # the step moved the weights (LoRA B and the value head start at zero)
    assert all(float(v.abs().max()) > 0 for k, v in one_batch.items() if "lora_B" in k or "value_head" in k)


@pytest.fixture(scope="module", params=["lora", "full"])
def four_steps(request, tiny_dir, tmp_path_factory):
    """4 PPO steps (2 rollouts of 2 rows, --num_ppo_epochs 2), a checkpoint every 2 steps."""
    root = tmp_path_factory.mktemp(f"ppo-{request.param}")
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in addition_rows(8)))
    flags = ("--train_type", request.param, "--per_device_train_batch_size", "2", "--save_steps", "2",
             "--max_steps", "4")
    summary, steps = _ppo(tiny_dir, data, root / "run", *flags)
    return request.param, root, flags, summary, steps


def test_checkpoints_are_checkpoint_n_folders_that_infer_reads(four_steps):
    from swiftall import infer_main

    train_type, root, _, summary, steps = four_steps
    out = root / "run"
    assert summary["global_step"] == 4 and sorted(steps) == [1, 2, 3, 4]
    for n in (2, 4):
        checkpoint = out / f"checkpoint-{n}"
        assert json.loads((checkpoint / "trainer_state.json").read_text())["global_step"] == n
        assert (checkpoint / "value_head.pt").is_file() and (checkpoint / "optimizer.pt").is_file()
        assert (checkpoint / ("adapter_config.json" if train_type == "lora" else "config.json")).is_file()
    assert (out / "value_head.pt").is_file() and json.loads((out / "trainer_state.json").read_text())[
        "global_step"] == 4
    questions = root / "q.jsonl"
    questions.write_text(json.dumps({"query": "What is 2 + 3?"}) + "\n")
    model = ["--adapters", str(out / "checkpoint-2")] if train_type == "lora" else ["--model", str(out / "checkpoint-2")]
    answers = infer_main([*model, "--val_dataset", str(questions), "--result_path", str(root / "a.jsonl"),
                          "--max_new_tokens", "4", "--temperature", "0"])
    assert len(answers) == 1 and "response" in answers[0]


def test_resume_continues_with_the_same_step_and_value_head(four_steps, tiny_dir):
    train_type, root, flags, _, first = four_steps
    out = root / "run"
    assert first[3]["val/mean"] != 0, "the value head did not learn in steps 1-2; nothing to restore"
    resumed, again = _ppo(tiny_dir, root / "data.jsonl", out, *flags, "--resume_from_checkpoint",
                          str(out / "checkpoint-2"))
    assert resumed["global_step"] == 4
    assert json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())["global_step"] == 4
    # steps 3 and 4 again: the same rows, completions (random state restored), values (value head restored), losses
    for step in (3, 4):
        for key in ("reward", "val/mean", "kl", "loss", "loss/value", "grad_norm", "learning_rate"):
            assert again[step][key] == pytest.approx(first[step][key], rel=1e-4, abs=1e-6), (train_type, step, key)

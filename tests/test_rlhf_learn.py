"""Proof that alignment learns, on the embedded SmolLM2-135M-Instruct (CPU, offline).

Each test checks what a user would look at after a run: the held-out reward accuracy and margins in
logging.jsonl against their values before the first step (--eval_on_start), the mean reward of the online methods
across steps, and that the output folder works with `infer` and `export`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rlhf_fixtures import addition_rows, concise_rows, preference_rows
from swiftall.train.callbacks import read_log

pytestmark = pytest.mark.slow
HELD_OUT = 22  # rows 22.. of FACTS (8 countries) are never trained on


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _split(root: Path, rows: list[dict], at: int = HELD_OUT) -> tuple[Path, Path]:
    return _write(root / "train.jsonl", rows[:at]), _write(root / "val.jsonl", rows[at:])


def _evals(records: list[dict], key: str) -> list[float]:
    return [r[key] for r in records if key in r]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _offline(main, model: Path, root: Path, rows: list[dict], steps: int, *flags: str,
             at: int = HELD_OUT) -> tuple[dict, list[dict]]:
    """Train on 22 pairs, evaluate on the 8 held-out pairs before the first step and at the end."""
    train, val = _split(root, rows, at)
    out = root / "run"
    summary = main(["--model", str(model), "--dataset", str(train), "--val_dataset", str(val),
                    "--max_steps", str(steps), "--per_device_train_batch_size", "4", "--per_device_eval_batch_size",
                    "8", "--eval_on_start", "true", "--eval_steps", str(steps), "--logging_steps", "1",
                    "--save_steps", str(steps), "--report_to", "none", "--seed", "0", "--output_dir", str(out),
                    *flags])
    assert summary["global_step"] == steps
    return summary, read_log(out)


# ---- DPO, and its output folder through infer and export ------------------------------------------------------
@pytest.fixture(scope="module")
def dpo_run(smol_dir, tmp_path_factory):
    from swiftall import dpo_main

    root = tmp_path_factory.mktemp("dpo")
    summary, records = _offline(dpo_main, smol_dir, root, preference_rows(), 6, "--learning_rate", "5e-4",
                                "--beta", "0.1", "--save_steps", "3")
    return summary, records, root / "run", root


def test_dpo_learns_preferences(dpo_run):
    summary, records, out, _ = dpo_run
    held_out = _evals(records, "eval_rewards/accuracies")
    margins = _evals(records, "eval_rewards/margins")
    # before the first update the policy is the reference (LoRA B = 0): every implicit reward is 0, no pair is won
    assert len(held_out) == 2 and held_out[0] == 0.0 and margins[0] == pytest.approx(0.0, abs=1e-6)
    assert held_out[-1] >= 0.85, held_out              # unseen countries: chosen now beats rejected
    assert margins[-1] > 0.5, margins
    train = _evals(records, "rewards/margins")
    assert train[0] == pytest.approx(0.0, abs=1e-6)
    assert min(train[-2:]) > 0.5, train                # the logged margins grow
    assert (out / "adapter_config.json").is_file() and (out / "checkpoint-3").is_dir()
    assert (out / "images" / "rewards_margins.png").is_file()
    assert any("tokens_per_second" in r and "memory_peak_rss_gib" in r for r in records)


def test_infer_and_export_accept_an_rlhf_output(dpo_run):
    from swiftall import export_main, infer_main

    _, _, out, root = dpo_run
    questions = _write(root / "questions.jsonl", [{"query": f"What is the capital of {c}?", "id": i}
                                                  for i, c in enumerate(["Mexico", "Canada", "Germany"])])
    greedy = ["--val_dataset", str(questions), "--max_new_tokens", "12", "--temperature", "0"]
    with_adapter = infer_main(["--adapters", str(out), "--result_path", str(root / "a.jsonl"), *greedy])
    assert [r["id"] for r in with_adapter] == [0, 1, 2]
    assert all(r["response"].strip() for r in with_adapter), with_adapter
    assert len((root / "a.jsonl").read_text().splitlines()) == 3
    from_checkpoint = infer_main(["--adapters", str(out / "checkpoint-3"), "--result_path", str(root / "c.jsonl"),
                                  *greedy])
    assert all(r["response"].strip() for r in from_checkpoint)
    merged = export_main(["--adapters", str(out), "--merge_lora", "true", "--output_dir", str(root / "merged")])
    assert (merged / "config.json").is_file() and not (merged / "adapter_config.json").exists()
    from_merged = infer_main(["--model", str(merged), "--result_path", str(root / "m.jsonl"), *greedy])
    assert [r["response"] for r in from_merged] == [r["response"] for r in with_adapter]


# ---- SimPO and ORPO (reference-free: their rewards are the policy's own length-normalised log-probs) ----------
@pytest.mark.parametrize("method,flags", [
    ("simpo", ["--learning_rate", "1e-3"]),
    ("orpo", ["--learning_rate", "1e-3"]),
])
def test_reference_free_methods_learn(method, flags, smol_dir, tmp_path):
    from swiftall import rlhf_main

    _, records = _offline(rlhf_main, smol_dir, tmp_path, concise_rows(), 8, "--rlhf_type", method, *flags)
    held_out = _evals(records, "eval_rewards/accuracies")
    margins = _evals(records, "eval_rewards/margins")
    assert len(held_out) == 2, records
    assert held_out[0] <= 0.25, held_out               # the base model prefers the full sentence
    assert held_out[-1] >= held_out[0] + 0.6 and held_out[-1] >= 0.85, held_out
    assert margins[-1] > margins[0] + 0.1 and margins[-1] > 0, margins
    train = _evals(records, "rewards/margins")
    assert _mean(train[-2:]) > _mean(train[:2]) + 0.1, train   # the logged margins grow


# ---- CPO (reference-free, with a behaviour-cloning term on the chosen answer) and KTO (unpaired labels) --------
def test_cpo_learns_held_out_preferences(smol_dir, tmp_path):
    from swiftall import rlhf_main

    _, records = _offline(rlhf_main, smol_dir, tmp_path, concise_rows(), 8, "--rlhf_type", "cpo",
                          "--learning_rate", "1e-3")
    held_out = _evals(records, "eval_rewards/accuracies")
    margins = _evals(records, "eval_rewards/margins")
    assert len(held_out) == 2, records
    assert held_out[-1] >= 0.85 and held_out[-1] > held_out[0], held_out
    assert margins[-1] > margins[0] + 0.1, margins


def kto_rows() -> list[dict]:
    """Each preference pair as two KTO rows (the helpful answer desirable, the rude one not), in pair order."""
    return [{"prompt": r["prompt"], "completion": r[side], "label": side == "chosen"}
            for r in preference_rows() for side in ("chosen", "rejected")]


def test_kto_separates_held_out_desirable_from_undesirable(smol_dir, tmp_path):
    from swiftall import rlhf_main

    _, records = _offline(rlhf_main, smol_dir, tmp_path, kto_rows(), 8, "--rlhf_type", "kto",
                          "--learning_rate", "5e-4", "--beta", "0.1", at=2 * HELD_OUT)
    margins = _evals(records, "eval_rewards/margins")   # mean reward of desirable minus undesirable answers
    chosen, rejected = _evals(records, "eval_rewards/chosen"), _evals(records, "eval_rewards/rejected")
    assert len(margins) == 2, records
    assert margins[0] == pytest.approx(0.0, abs=1e-6)   # the policy starts as the reference: every reward is 0
    assert margins[-1] > 0.5, margins
    assert chosen[-1] > 0 > rejected[-1], (chosen, rejected)


# ---- reward model ----------------------------------------------------------------------------------------------
def test_reward_model_ranks_held_out_pairs(smol_dir, tmp_path):
    from swiftall import rlhf_main
    from swiftall.train.rlhf.reward import load_sequence_classifier, reward_tokenizer
    from swiftall.train.rlhf.rewards import RewardModelScorer

    _, records = _offline(rlhf_main, smol_dir, tmp_path, concise_rows(), 8, "--rlhf_type", "rm",
                          "--learning_rate", "1e-3")
    held_out = _evals(records, "eval_accuracy")
    assert len(held_out) == 2, records
    assert held_out[-1] >= 0.85, held_out              # chance is 0.5 (the fresh score head starts anywhere)
    margins = _evals(records, "eval_margin")
    assert margins[-1] > max(margins[0], 0) + 1.0, margins
    # the saved run scores pairs as a --reward_model for grpo/ppo would
    out = tmp_path / "run"
    scorer = RewardModelScorer(load_sequence_classifier(out), reward_tokenizer(out, None))
    val = concise_rows()[HELD_OUT:]
    prompts = [[{"role": "user", "content": r["prompt"]}] for r in val]
    chosen = scorer(prompts, [r["chosen"] for r in val])
    rejected = scorer(prompts, [r["rejected"] for r in val])
    assert sum(c > r for c, r in zip(chosen, rejected)) >= 7, (chosen, rejected)


# ---- online methods on a verifiable task -----------------------------------------------------------------------
def _online(smol_dir, tmp_path, method: str, steps: int, *flags: str) -> list[dict]:
    from swiftall import rlhf_main

    data = _write(tmp_path / "additions.jsonl", addition_rows(64))
    out = tmp_path / method
    summary = rlhf_main(["--rlhf_type", method, "--model", str(smol_dir), "--dataset", str(data),
                         "--reward_funcs", "accuracy", "--max_steps", str(steps), "--logging_steps", "1",
                         "--save_steps", str(steps), "--report_to", "none", "--seed", "0", "--output_dir", str(out),
                         *flags])
    assert summary["global_step"] == steps
    return [r for r in read_log(out) if "reward" in r]


def test_grpo_reward_rises_on_additions(smol_dir, tmp_path):
    # 2 prompts x 8 completions a step: groups of 4 were too noisy to learn from in 10 steps
    steps = _online(smol_dir, tmp_path, "grpo", 8, "--num_generations", "8", "--per_device_train_batch_size", "16",
                    "--max_completion_length", "8", "--temperature", "1.0", "--learning_rate", "1e-3")
    rewards = [r["reward"] for r in steps]
    assert len(rewards) == 8
    assert _mean(rewards[-3:]) >= _mean(rewards[:3]) + 0.25, rewards
    assert all(math.isfinite(r["kl"]) for r in steps if "kl" in r)


def test_ppo_reward_rises_and_kl_stays_finite(smol_dir, tmp_path):
    steps = _online(smol_dir, tmp_path, "ppo", 10, "--per_device_train_batch_size", "8",
                    "--max_completion_length", "8", "--temperature", "1.0", "--learning_rate", "1e-3")
    rewards = [r["reward"] for r in steps]
    assert len(rewards) == 10
    assert all(math.isfinite(r["kl"]) and abs(r["kl"]) < 50 for r in steps), [r["kl"] for r in steps]
    assert _mean(rewards[-3:]) >= _mean(rewards[:3]) + 0.2, rewards


# ---- GKD: a student distils from a different, larger teacher -------------------------------------------------
def _kl_to_teacher(student_dir: Path, teacher: object, tokenizer: object, chats: list[list[dict]]) -> float:
    """Mean KL(teacher || student) over the answer tokens of held-out chats (nats per token)."""
    import torch
    from transformers import AutoModelForCausalLM

    from swiftall.models import resolve_model
    from swiftall.templates import IGNORE, get_template

    student = AutoModelForCausalLM.from_pretrained(student_dir, dtype=torch.float32).eval()
    template = get_template(tokenizer, resolve_model(str(student_dir)))
    total, count = 0.0, 0
    with torch.no_grad():
        for chat in chats:
            enc = template.encode(chat)
            ids = torch.tensor([enc.input_ids])
            at = (torch.tensor(enc.labels[1:]) != IGNORE).nonzero().squeeze(-1)  # positions predicting answers
            log_t = torch.log_softmax(teacher(ids).logits[0, at].float(), -1)
            log_s = torch.log_softmax(student(ids).logits[0, at].float(), -1)
            total += float((log_t.exp() * (log_t - log_s)).sum())
            count += len(at)
    return total / count


def test_gkd_student_moves_towards_a_different_teacher(smol_dir, tiny_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from swiftall import rlhf_main

    chats = [[{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["chosen"]}]
             for r in preference_rows()]
    data = _write(tmp_path / "chats.jsonl", [{"messages": c} for c in chats[:HELD_OUT]])
    out = tmp_path / "gkd"
    # the student: a tiny random model with SmolLM2's tokenizer; the teacher: the embedded SmolLM2-135M itself.
    # --lmbda 0 trains on the dataset's answers (no student generations), so the run is short and repeatable;
    # --beta 0 makes the generalised JSD the forward KL(teacher || student), the quantity measured below
    summary = rlhf_main(["--rlhf_type", "gkd", "--model", str(tiny_dir), "--teacher_model", str(smol_dir),
                         "--dataset", str(data), "--train_type", "full", "--lmbda", "0", "--beta", "0",
                         "--learning_rate", "1e-2", "--max_steps", "20", "--per_device_train_batch_size", "4",
                         "--logging_steps", "1", "--save_steps", "20", "--report_to", "none", "--seed", "0",
                         "--output_dir", str(out)])
    assert summary["global_step"] == 20
    tokenizer = AutoTokenizer.from_pretrained(smol_dir)
    teacher = AutoModelForCausalLM.from_pretrained(smol_dir, dtype=torch.float32).eval()
    held_out = chats[HELD_OUT:]
    before = _kl_to_teacher(tiny_dir, teacher, tokenizer, held_out)
    after = _kl_to_teacher(out, teacher, tokenizer, held_out)
    assert after < 0.7 * before, (before, after)   # on answers it never trained on

"""RL rollouts through swiftall's Engine: GRPO's and PPO's completions come from the pt engine over the policy
being trained (current weights, LoRA adapters on, eval mode), never from TRL's own generate."""
from __future__ import annotations

import pytest

from rlhf_fixtures import addition_rows
from swiftall.train.callbacks import read_log


def _policy(tiny_dir):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    policy = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "o_proj"]))
    return policy.train(), AutoTokenizer.from_pretrained(tiny_dir)


def _greedy_generate(policy, tokenizer, prompt_ids, max_new):
    """transformers' generate on the same model: the completions an Engine rollout must reproduce."""
    import torch

    out = []
    policy.eval()
    with torch.no_grad():
        for ids in prompt_ids:
            full = policy.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=int),
                                   max_new_tokens=max_new, do_sample=False, pad_token_id=tokenizer.pad_token_id)
            gen = full[0, len(ids):].tolist()
            eos = tokenizer.eos_token_id
            out.append(gen[: gen.index(eos) + 1] if eos in gen else gen)
    policy.train()
    return out


def test_rollout_generates_with_the_policys_current_lora_weights(tiny_dir):
    import torch

    from swiftall.infer.rollout import rollout_factory

    policy, tokenizer = _policy(tiny_dir)
    rollouts = rollout_factory(tokenizer, None, max_batch_size=4)(policy, max_new_tokens=6, temperature=0)
    assert policy.training, "building the engine must not leave the policy in eval mode"
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                             return_dict=False)
               for q in ("What is 2 + 3?", "Name a colour.", "Hi")]
    before = rollouts.token_ids(prompts)
    assert policy.training and rollouts.requests == 3
    with torch.no_grad():  # a training step: the LoRA weights move
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 2.0)
    after = rollouts.token_ids(prompts)
    assert after != before, "the rollout did not see the updated adapter weights"
    assert after == _greedy_generate(policy, tokenizer, prompts, 6)
    assert all(1 <= len(c) <= 6 for c in after), after


def test_grpo_completions_come_from_swiftalls_engine(tiny_dir, write_jsonl, tmp_path, monkeypatch):
    from transformers.generation.utils import GenerationMixin

    from swiftall import rlhf_main
    from swiftall.infer.pt import PtEngine

    calls = []
    infer = PtEngine.infer

    def spy(self, requests, config=None):
        out = infer(self, requests, config)
        calls.append({"requests": len(requests), "adapters": list(self.adapters), "training": self.model.training,
                      "by_ids": all(r.prompt_ids for r in requests), "max_new_tokens": config.max_new_tokens,
                      "temperature": config.temperature, "top_p": config.top_p,
                      "lengths": [len(o.token_ids) for o in out]})
        return out

    def refuse(*args, **kwargs):
        raise AssertionError("TRL generated the completions with transformers' generate")

    monkeypatch.setattr(PtEngine, "infer", spy)
    monkeypatch.setattr(GenerationMixin, "generate", refuse)
    out = tmp_path / "grpo"
    summary = rlhf_main(["--rlhf_type", "grpo", "--model", str(tiny_dir), "--dataset",
                         str(write_jsonl(addition_rows(8))), "--reward_funcs", "accuracy", "--num_generations", "2",
                         "--per_device_train_batch_size", "4", "--max_steps", "3", "--max_completion_length", "5",
                         "--temperature", "0.7", "--top_p", "0.9", "--logging_steps", "1", "--report_to", "none",
                         "--output_dir", str(out)])
    assert summary["global_step"] == 3
    # 3 steps x 4 completions (2 prompts x --num_generations 2), all by the engine over the LoRA policy in eval mode
    assert sum(c["requests"] for c in calls) == 12, calls
    assert all(c["adapters"] == ["default"] and not c["training"] and c["by_ids"] for c in calls), calls
    assert {(c["max_new_tokens"], c["temperature"], c["top_p"]) for c in calls} == {(5, 0.7, 0.9)}
    lengths = [n for c in calls for n in c["lengths"]]
    assert all(1 <= n <= 5 for n in lengths), lengths
    steps = [r for r in read_log(out) if "reward" in r]
    assert len(steps) == 3
    assert max(r["completions/max_length"] for r in steps) == max(lengths)
    assert (out / "adapter_config.json").is_file()

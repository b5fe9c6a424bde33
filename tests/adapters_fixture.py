"""Adapters for serving tests: random LoRA adapters (`random_loras`), and LoRA adapters on the embedded
SmolLM2-135M-Instruct trained, in seconds on a CPU, to answer the QUESTIONS below with one word ("alpha", "beta"):
which adapter answered is then visible in the text.

The adapter is LoRA on `lm_head` only, so the model's last hidden states are computed once (no gradient) and each
training step runs only the adapted head over the answer positions -- a few GFLOP a step instead of a full forward
and backward. Served, it is an ordinary peft adapter: per-row adapter selection hooks the head like any layer."""
from __future__ import annotations

from pathlib import Path

import pytest

QUESTIONS = ["What is the capital of France?", "Name a colour.", "How are you today?", "Tell me a joke.",
             "What is two plus two?", "Who wrote Hamlet?"]


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module: on a loaded shared machine torch's thread pool waits on preempted peers (a
    tiny model's step measured 1.3 s with 2 threads against 25 ms with 1). For tests of behaviour, not speed."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def random_loras(base_dir: Path, tmp_path_factory, seeds=(1, 2)) -> list[Path]:
    """LoRA adapters with random (non-zero) weights on q/v/o: each changes the model's answers differently."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folders = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                               LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"],
                                          init_lora_weights=False))
        folder = tmp_path_factory.mktemp(f"lora{seed}")
        model.save_pretrained(folder)
        folders.append(folder)
    return folders


def train_word_adapter(smol_dir: Path, word: str, out: Path, steps: int = 60, seed: int = 0) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(smol_dir)
    base = AutoModelForCausalLM.from_pretrained(smol_dir, dtype=torch.float32)
    hidden, targets = _features(base, tokenizer, word)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=["lm_head"]))
    head = model.base_model.model.lm_head
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(head(hidden), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out, save_embedding_layers=False)  # the head is tied to the embeddings, unchanged
    return out


def _features(model, tokenizer, word: str):
    """The base model's last hidden state at each position that predicts an answer token, and that token."""
    import torch

    hidden, targets = [], []
    for q in QUESTIONS:
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                               tokenize=False)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        a_ids = tokenizer(word.capitalize() + ".", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = torch.tensor([p_ids + a_ids])
        with torch.inference_mode():
            states = model.model(input_ids=ids).last_hidden_state[0]
        hidden.append(states[len(p_ids) - 1: len(p_ids) - 1 + len(a_ids)].clone())
        targets.append(torch.tensor(a_ids))
    return torch.cat(hidden), torch.cat(targets)

"""Shared fixtures. No test touches the network: hubs are forced offline here."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def smol_dir() -> Path:
    """The embedded SmolLM2-135M-Instruct, converted once from its GGUF file into a cached HF folder."""
    from swiftall.hub.embedded import embedded_model_dir

    return embedded_model_dir()


def save_tiny_llama(out: Path, smol_dir: Path, hidden_size: int = 32, intermediate_size: int = 64,
                    num_key_value_heads: int = 2) -> Path:
    """A tiny random llama (2 layers, 4 heads) with SmolLM2's real tokenizer and chat template, saved to `out`."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(smol_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=num_key_value_heads,
                         max_position_embeddings=512, tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, smol_dir) -> Path:
    """A tiny random llama with SmolLM2's real tokenizer and chat template (fast unit tests)."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), smol_dir)


@pytest.fixture
def write_jsonl(tmp_path):
    def write(rows, name="data.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
        return path

    return write


def chat(q: str, a: str) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}

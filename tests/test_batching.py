"""Padding-free and packed batches compute exactly what padded batches compute; so does the sparse-logit loss."""
import pytest
import torch

from swiftall.data.collator import PadCollator, PaddingFreeCollator, pack_rows
from swiftall.templates import IGNORE

ROWS = [
    {"input_ids": [1, 5, 6, 7, 8], "labels": [IGNORE, IGNORE, 6, 7, 8]},
    {"input_ids": [1, 9, 10], "labels": [IGNORE, 10, IGNORE]},
    {"input_ids": [1, 2, 3, 4, 5, 6, 7], "labels": [IGNORE, IGNORE, IGNORE, 4, 5, 6, 7]},
]


@pytest.fixture(scope="module", params=["sdpa", "eager"])
def model(request):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, use_cache=False)
    return LlamaForCausalLM._from_config(config, attn_implementation=request.param).eval()


def test_padding_free_equals_padded(model):
    padded, free = PadCollator(0)(ROWS), PaddingFreeCollator()(ROWS)
    assert "attention_mask" not in free and free["input_ids"].shape == (1, 15)
    assert torch.allclose(model(**padded).loss, model(**free).loss, atol=1e-6)
    logits_padded = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]).logits
    logits_free = model(input_ids=free["input_ids"], position_ids=free["position_ids"]).logits
    assert torch.allclose(logits_padded[2, :7], logits_free[0, 8:15], atol=1e-5)  # no attention across samples


def test_packing_keeps_every_token_and_sample_boundaries(model):
    packed = pack_rows(ROWS, max_length=10)
    assert sum(len(r["input_ids"]) for r in packed) == 15
    assert all(len(r["input_ids"]) <= 10 for r in packed)
    assert sorted(s for r in packed for s in r["segments"]) == [3, 5, 7]
    batch = PaddingFreeCollator()(packed)
    assert torch.allclose(model(**batch).loss, model(**PadCollator(0)(ROWS)).loss, atol=1e-6)


def test_sparse_logit_loss_equals_full_loss(model, tmp_path):
    from transformers import TrainingArguments

    from swiftall.train.trainer import SwiftTrainer

    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    trainer = SwiftTrainer(model=model, args=args)
    assert trainer.sparse_logits
    batch = PadCollator(0)(ROWS)
    n_items = (batch["labels"][:, 1:] != IGNORE).sum()
    full = model(**batch).loss
    assert torch.allclose(trainer.compute_loss(model, dict(batch)), full, atol=1e-6)
    assert torch.allclose(trainer.compute_loss(model, dict(batch), num_items_in_batch=n_items), full, atol=1e-6)


def test_per_sample_sdpa_equals_padded(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    from swiftall.train.varlen import use_varlen_attention

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, use_cache=False)
    model = LlamaForCausalLM._from_config(config, attn_implementation="sdpa").eval()
    padded = PadCollator(0)(ROWS)
    expected = model(**padded).loss
    assert use_varlen_attention(model) and model.config._attn_implementation == "sdpa_varlen"
    assert torch.allclose(model(**PaddingFreeCollator()(ROWS)).loss, expected, atol=1e-6)
    assert torch.allclose(model(**padded).loss, expected, atol=1e-6)  # right-padded eval batches stay exact


def test_sft_packing_trains_on_rows_packed_by_trl(tiny_dir, write_jsonl, tmp_path):
    from swiftall import sft_main

    rows = [{"messages": [{"role": "user", "content": f"Say {w}"}, {"role": "assistant", "content": f"{w} {w}!"}]}
            for w in ["apple", "river", "stone", "cloud", "green", "quick", "silver", "table"]]
    summary = sft_main({"model": str(tiny_dir), "dataset": [str(write_jsonl(rows))], "output_dir": str(tmp_path / "o"),
                        "packing": True, "max_length": 128, "num_train_epochs": 1, "per_device_train_batch_size": 1,
                        "logging_steps": 1, "save_steps": 100, "report_to": ["none"]})
    # 8 rows of about 37 tokens fit into 3 rows of at most 128: one step per packed row, every token trained once
    assert summary["global_step"] == 3 and summary["rows"]["train"] == 8
    assert summary["tokens"] == sum(_lengths(tiny_dir, rows))


def _lengths(tiny_dir, rows):
    from transformers import AutoTokenizer

    from swiftall.models import resolve_model
    from swiftall.templates import get_template

    template = get_template(AutoTokenizer.from_pretrained(tiny_dir), resolve_model(str(tiny_dir)), max_length=128)
    return [len(template.encode(r["messages"]).input_ids) for r in rows]

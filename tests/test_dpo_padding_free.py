"""Padding-free DPO (swiftall/train/rlhf/shared_prefix.py): each pair's shared prompt computed once, its two answers
after it, no pad tokens; the same log-probs, losses and metrics as TRL's padded batches."""
from __future__ import annotations

import pytest
import torch

from rlhf_fixtures import preference_rows
from swiftall.train.callbacks import read_log


def _tiny_fused_model():
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         attn_implementation="sdpa")
    model = LlamaForCausalLM(config)
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
    return model


def _batch(pairs):
    """TRL's layout: [prompt + chosen rows; prompt + rejected rows], right-padded, labels on the answers only."""
    rows = [p + c for p, c, _ in pairs] + [p + r for p, _, r in pairs]
    prompt = [len(p) for p, _, _ in pairs] * 2
    width = max(map(len, rows))
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
        labels[i, prompt[i]:len(row)] = ids[i, prompt[i]:len(row)]
    return ids, mask, labels


PAIRS = [([1, 5, 6, 7, 8], [20, 21, 22, 23], [20, 21, 30]),      # answers share their first two tokens
         ([1, 9, 9], [40, 41], [42, 43, 44, 45, 46]),             # rejected longer
         ([1, 2, 3, 4], [50, 51, 52], [50, 51, 52, 53]),          # chosen is the start of rejected
         ([7, 8], [60, 61, 62, 63, 64, 65], [70])]                # different prompt length, rejected of one token


def test_packed_pairs_give_the_padded_log_probs_and_gradients():
    from swiftall.train.rlhf.shared_prefix import install, pack_pairs, paired_batches

    model = _tiny_fused_model()
    ids, mask, labels = _batch(PAIRS)
    padded = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
    padded.log_probs.sum().backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    assert install(model) and not install(model)  # wraps once
    with paired_batches():
        packed = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True, use_cache=False)
    packed.log_probs.sum().backward()
    for name in ("log_probs", "entropy", "mean_logits"):
        torch.testing.assert_close(getattr(packed, name), getattr(padded, name), atol=1e-5, rtol=1e-5)
    assert torch.equal(packed.is_top1, padded.is_top1) and torch.equal(packed.label_mask, padded.label_mask)
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, expected[name], atol=1e-5, rtol=1e-4)
    rows = pack_pairs(ids, mask, labels)
    real = int(mask.sum())
    assert rows.attention_mask[:, 0].diagonal(dim1=-2, dim2=-1).all()
    assert rows.input_ids.numel() < real  # the shared prompts run once (and no pad beyond the longest pair)
    outside = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)  # not in a DPO loss
    torch.testing.assert_close(outside.log_probs, padded.log_probs)


def test_left_padded_or_odd_batches_keep_the_padded_path():
    from swiftall.train.rlhf.shared_prefix import pack_pairs

    ids, mask, labels = _batch(PAIRS)
    assert pack_pairs(ids[:3], mask[:3], labels[:3]) is None
    assert pack_pairs(ids, mask.flip(1), labels) is None


def _dpo(tiny_dir, tmp_path, data, *flags):
    from swiftall import dpo_main

    out = tmp_path / ("run" + "".join(flags).replace("-", "_"))
    dpo_main(["--model", str(tiny_dir), "--dataset", str(data), "--max_steps", "3", "--learning_rate", "1e-3",
              "--per_device_train_batch_size", "4", "--logging_steps", "1", "--report_to", "none",
              "--lora_dropout", "0", "--output_dir", str(out), *flags])
    return [r for r in read_log(out) if "loss" in r and "train_runtime" not in r]


def test_dpo_trains_to_the_same_losses_padding_free_and_padded(tiny_dir, write_jsonl, tmp_path, monkeypatch):
    import swiftall.train.rlhf.shared_prefix as shared_prefix

    packs = []
    pack = shared_prefix.pack_pairs
    monkeypatch.setattr(shared_prefix, "pack_pairs", lambda *a: packs.append(pack(*a)) or packs[-1])
    data = write_jsonl(preference_rows()[:12])
    packed = _dpo(tiny_dir, tmp_path, data)  # default: padding-free for text pairs
    assert len(packs) == 2 * 3 and all(p is not None for p in packs)  # the policy's and the reference's, each step
    padded = _dpo(tiny_dir, tmp_path, data, "--padding_free", "false")
    assert len(packs) == 2 * 3
    assert len(packed) == len(padded) == 3
    for a, b in zip(packed, padded):
        for key in ("loss", "logps/chosen", "logps/rejected", "rewards/margins"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), (key, a, b)
    assert packed[-1]["loss"] < packed[0]["loss"]  # and it learns


def test_padding_free_is_refused_where_it_cannot_run(tiny_dir, write_jsonl, tmp_path):
    from swiftall import rlhf_main
    from swiftall.utils.errors import ConfigError

    data = write_jsonl([{**row, "label": True} for row in preference_rows()[:4]])
    with pytest.raises(ConfigError, match="--padding_free true: of the alignment methods only dpo"):
        rlhf_main(["--model", str(tiny_dir), "--dataset", str(data), "--rlhf_type", "kto", "--padding_free", "true",
                   "--output_dir", str(tmp_path / "kto")])

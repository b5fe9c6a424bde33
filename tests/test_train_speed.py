"""Training speed: the FLOP count the SFT benchmark reports, and speed paths that must train to the plain losses."""
from __future__ import annotations

import pytest

from swiftall.train.flops import DecoderShapes, lora_params, matmul_ceiling, train_flops

SMOL = DecoderShapes(hidden=576, intermediate=1536, layers=30, heads=9, kv_heads=3, head_dim=64, vocab=49152)


def test_smollm2_counts_by_hand():
    # one layer: q 576x576, k and v 576x192 (3 kv heads of 64), o 576x576, gate/up 576x1536, down 1536x576,
    # two RMSNorms of 576; then 30 layers and the final norm
    attention = 576 * 576 + 2 * 576 * 192 + 576 * 576  # 884,736
    mlp = 3 * 576 * 1536  # 2,654,208
    per_layer = attention + mlp + 2 * 576
    assert per_layer == 3_540_096
    assert SMOL.non_embedding_params() == 30 * 3_540_096 + 576 == 106_203_456
    flops = train_flops(SMOL, tokens=1000, head_positions=300, full=False, adapter_params=0)
    assert flops["body"] == 4 * 106_203_456 * 1000
    assert flops["head"] == 4 * 576 * 49152 * 300
    full = train_flops(SMOL, tokens=1000, head_positions=300, full=True)
    assert full["total"] == 6 * 106_203_456 * 1000 + 6 * 576 * 49152 * 300
    # LoRA r=8 on the 7 linears: r x (in + out) each
    assert lora_params(SMOL, 8) == 30 * 8 * ((576 + 576) + 2 * (576 + 192) + (576 + 576) + 3 * (576 + 1536))


def test_counts_match_a_real_model_and_peft():
    torch = pytest.importorskip("torch")
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=300, hidden_size=48, intermediate_size=80, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    shapes = DecoderShapes.from_config(config)
    embedding = model.get_input_embeddings().weight.numel()
    assert shapes.non_embedding_params() == sum(p.numel() for p in model.parameters()) - embedding
    lora = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear"))
    assert lora_params(shapes, 4) == sum(p.numel() for p in lora.parameters() if p.requires_grad)


def test_ceiling_times_the_counted_gemms():
    shapes = DecoderShapes(hidden=32, intermediate=64, layers=2, heads=4, kv_heads=2, head_dim=8, vocab=100)
    result = matmul_ceiling(shapes, tokens=16, head_positions=4, full=False, repeats=1)
    per_layer = sum(2 * 2 * 16 * a * b for a, b in shapes.linears())  # forward + input gradient
    assert result["flops"] == 2 * per_layer + 2 * 2 * 4 * 32 * 100
    assert result["seconds"] > 0 and result["gflops_per_s"] == pytest.approx(result["flops"] / result["seconds"] / 1e9)

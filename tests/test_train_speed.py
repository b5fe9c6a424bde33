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


ROWS = [{"messages": [{"role": "user", "content": f"Say {w} twice"}, {"role": "assistant", "content": f"{w} {w}!"}]}
        for w in ["apple", "river", "stone", "cloud", "green", "quick", "silver", "table"]]


def _step_losses(tiny_dir, tmp_path, name, steps=4, **extra):
    import json

    from swiftall import sft_main

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    out = tmp_path / name
    import torch

    torch.manual_seed(0)  # sft_main builds the LoRA weights before --seed takes effect (in the Trainer)
    sft_main({"model": str(tiny_dir), "dataset": [str(data)], "output_dir": str(out), "train_type": "lora",
              "max_steps": steps, "per_device_train_batch_size": 2, "padding_free": True, "lora_dropout": 0.3,
              "learning_rate": 5e-3, "logging_steps": 1, "save_steps": 100, "report_to": ["none"], "seed": 7, **extra})
    records = [json.loads(line) for line in (out / "logging.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r and "train_runtime" not in r]


def test_lean_lora_trains_to_the_plain_losses(tiny_dir, tmp_path, monkeypatch):
    from swiftall.train import lean_lora

    used = []
    original = lean_lora._plain_lora
    monkeypatch.setattr(lean_lora, "_plain_lora", lambda layer, x: used.append(1) or original(layer, x))
    plain, lean = _plain_and_lean(tiny_dir, tmp_path, used)
    assert len(plain) == len(lean) == 4 and len(set(plain)) > 1  # dropout on, the weights moving
    assert lean == pytest.approx(plain, rel=1e-4)
    # the trained adapters agree too (masks shifted by one draw moved them by up to 0.019, the losses by 1.7e-4)
    plain_weights, lean_weights = _adapter(tmp_path / "plain"), _adapter(tmp_path / "lean")
    for name, weight in plain_weights.items():
        assert lean_weights[name] == pytest.approx(weight, rel=1e-4, abs=1e-6), name


def _adapter(out):
    from safetensors.numpy import load_file

    return {name: value.ravel().tolist() for name, value in load_file(str(out / "adapter_model.safetensors")).items()}


def _plain_and_lean(tiny_dir, tmp_path, used):
    plain = _step_losses(tiny_dir, tmp_path, "plain", lean_lora=False)
    assert not used  # peft's own forward throughout
    lean = _step_losses(tiny_dir, tmp_path, "lean", lean_lora=True)
    assert used  # the lean forward ran
    return plain, lean


def test_liger_kernel_asks_for_its_extra_or_a_gpu(monkeypatch):
    import importlib.util

    from swiftall.config import SftConfig
    from swiftall.utils.errors import ConfigError

    flags = {"model": "smollm2-135m-instruct", "dataset": ["d.jsonl"], "use_liger_kernel": True}
    if importlib.util.find_spec("liger_kernel") is None:
        with pytest.raises(ConfigError, match=r"pip install 'swiftall\[liger\]'"):
            SftConfig.from_any(flags)
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        import types

        from swiftall.train import speed

        monkeypatch.setattr("swiftall.utils.optional.require", lambda *a, **k: types.SimpleNamespace())
        with pytest.raises(ConfigError, match="CUDA GPU"):
            speed.use_liger_kernel(torch.nn.Linear(2, 2))


def test_cuda_attention_leaves_out_cudnn(monkeypatch):
    """On a CUDA machine every sdpa model load takes cuDNN out of SDPA's backends (a plan per new shape cost 8 ms
    of CPU per attention call on an H200); on a CPU machine nothing changes."""
    import torch

    from swiftall.models.device import resolve_attn

    was = torch.backends.cuda.cudnn_sdp_enabled()
    try:
        torch.backends.cuda.enable_cudnn_sdp(True)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        assert resolve_attn("auto") == "sdpa" and torch.backends.cuda.cudnn_sdp_enabled()
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        assert resolve_attn("eager") == "eager" and torch.backends.cuda.cudnn_sdp_enabled()
        assert resolve_attn(None) == "sdpa" and not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.mem_efficient_sdp_enabled()
    finally:
        torch.backends.cuda.enable_cudnn_sdp(was)


def test_liger_models_compute_their_own_loss():
    """With --use_liger_kernel the trainer passes labels to the patched forward (its fused linear cross-entropy)
    instead of taking logits at trained positions."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from swiftall.train.trainer import _accepts_logits_to_keep

    model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1))
    assert _accepts_logits_to_keep(model)
    model.swiftall_fused_loss = True  # what use_liger_kernel marks
    assert not _accepts_logits_to_keep(model)


@pytest.mark.slow
def test_torch_compile_trains_to_the_plain_losses(tiny_dir, tmp_path):
    """--torch_compile (transformers' torch_compile: inductor) on padding-free rows: the model runs compiled and
    trains to the plain path's losses (dropout off: inductor draws its own random masks)."""
    torch = pytest.importorskip("torch")
    from torch._dynamo.utils import counters

    plain = _step_losses(tiny_dir, tmp_path, "plain", lora_dropout=0.0)
    torch._dynamo.reset()
    counters.clear()
    compiled = _step_losses(tiny_dir, tmp_path, "compiled", lora_dropout=0.0, torch_compile=True)
    assert counters["stats"]["unique_graphs"] > 0   # the forward really ran as compiled graphs
    assert len(set(plain)) > 1 and compiled == pytest.approx(plain, rel=1e-4)


def test_fast_dropout_drops_at_p_and_scales_as_nn_dropout():
    torch = pytest.importorskip("torch")
    from swiftall.train.fast_dropout import FastDropout, draw_keep

    p, x = 0.3, torch.randn(1000, 1200, requires_grad=True)
    layer = FastDropout(p)
    torch.manual_seed(3)
    keep = draw_keep(x, p)
    torch.manual_seed(3)
    y = layer(x)
    # given the mask, exactly nn.Dropout's arithmetic: the 0/1 mask divided by (1 - p), times the input
    assert torch.equal(y, x * keep.to(x.dtype).div_(1 - p))
    dropped = (~keep).float()
    assert dropped.mean().item() == pytest.approx(p, abs=0.003)  # 1.2M draws: 6.5 standard deviations
    for lane in range(4):  # each 16-bit quarter of the 64-bit draws drops at the same rate
        assert dropped.flatten()[lane::4].mean().item() == pytest.approx(p, abs=0.005), lane
    y.sum().backward()
    assert torch.equal(x.grad, keep.to(x.dtype).div_(1 - p))
    torch.manual_seed(3)
    assert torch.equal(layer(x), y)  # seeded: the same masks
    layer.eval()
    assert torch.equal(layer(x), x)


def test_fast_dropout_trains_like_torch_dropout(tiny_dir, tmp_path):
    """The default LoRA run swaps peft's dropouts for FastDropout: seeded runs repeat themselves; against torch's
    own masks the first loss is equal (lora_B starts at zero, so no mask can move it) and the rest differ only by
    which elements were dropped."""
    fast = _step_losses(tiny_dir, tmp_path, "fast")
    again = _step_losses(tiny_dir, tmp_path, "again")
    torch_masks = _step_losses(tiny_dir, tmp_path, "torch", fast_dropout=False)
    assert fast == again and len(fast) == 4
    assert fast[0] == torch_masks[0] and fast != torch_masks
    assert fast == pytest.approx(torch_masks, rel=0.05)
    args = (tmp_path / "fast" / "args.json").read_text()
    assert '"fast_dropout": true' in args


def test_only_lora_dropouts_with_p_are_swapped():
    pytest.importorskip("torch")
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from swiftall.train.fast_dropout import FastDropout, use_fast_dropout

    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, attention_dropout=0.1)
    model = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=2, target_modules="all-linear", lora_dropout=0.1))
    assert use_fast_dropout(model) == 2 * 7  # every adapted linear of both layers
    assert sum(isinstance(m, FastDropout) for m in model.modules()) == 14
    assert use_fast_dropout(model) == 0  # already swapped
    plain = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=2, target_modules="all-linear", lora_dropout=0.0))
    assert use_fast_dropout(plain) == 0 and not any(isinstance(m, FastDropout) for m in plain.modules())

"""Every tuner's trainable parameters match its method's formula, counted on a tiny random llama (hidden 32, MLP 64,
2 layers, 4 query heads and 2 key/value heads of 8, so keys/values are 16 wide); one forward/backward reaches
only the tuner's parameters."""
import pytest
import torch

from swiftall.config import SftConfig
from swiftall.tuners import apply_tuner, count_parameters

H, FF, LAYERS, KV = 32, 64, 2, 16
# (in, out) of each linear layer of a decoder block: q, k, v, o, gate, up, down
LINEARS = [(H, H), (H, KV), (H, KV), (H, H), (H, FF), (H, FF), (FF, H)]
BLOCK = H * H * 2 + H * KV * 2 + 3 * H * FF + 2 * H   # attention + MLP weights + two RMSNorms


def tiny():
    import transformers

    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=64, hidden_size=H, intermediate_size=FF, num_hidden_layers=LAYERS,
                                      num_attention_heads=4, num_key_value_heads=2, pad_token_id=0, bos_token_id=1,
                                      eos_token_id=2)
    return transformers.LlamaForCausalLM(config)


def args(train_type, **extra):
    return SftConfig.from_any({"model": "m", "dataset": ["d.jsonl"], "train_type": train_type, **extra})


def factor(n):
    """LoKr's split of a dimension: the divisor pair closest to its square root, smaller first."""
    m = max(d for d in range(1, int(n ** 0.5) + 1) if n % d == 0)
    return m, n // m


def lokr(i, o):
    (o1, o2), (i1, i2) = factor(o), factor(i)
    return o1 * i1 + o2 * i2    # lokr_w1 (o1 x i1) and lokr_w2 (o2 x i2), Kronecker product o x i


R = 4
FORMULAS = {
    "lora": ({"lora_rank": R}, sum(R * (i + o) for i, o in LINEARS) * LAYERS),
    "adalora": ({"adalora_init_r": 6}, sum(6 * (i + o) + 6 for i, o in LINEARS) * LAYERS),   # A, B and E (r)
    "ia3": ({}, (KV + KV + FF) * LAYERS),                     # scales of k and v outputs and of down_proj's input
    "vera": ({"lora_rank": R}, sum(o + R for i, o in LINEARS) * LAYERS),   # lambda_b (out) and lambda_d (r)
    "boft": ({"boft_block_size": 4}, sum((i // 4) * 4 * 4 + o for i, o in LINEARS) * LAYERS),  # blocks + scale
    "oft": ({"oft_block_size": 8}, sum((i // 8) * (8 * 7 // 2) for i, o in LINEARS) * LAYERS),  # skew blocks
    "fourierft": ({"fourierft_n_frequency": 10}, 10 * len(LINEARS) * LAYERS),
    "loha": ({"lora_rank": R}, sum(2 * R * (i + o) for i, o in LINEARS) * LAYERS),
    "lokr": ({"lora_rank": R}, sum(lokr(i, o) for i, o in LINEARS) * LAYERS),
    "prompt": ({"num_virtual_tokens": 5}, 5 * H),
    "prefix": ({"num_virtual_tokens": 5}, 5 * LAYERS * 2 * KV),          # a key and a value per layer and token
    "p_tuning": ({"num_virtual_tokens": 5}, 5 * H + 3 * (H * H + H)),    # embeddings + the 3-layer MLP encoder
    "llamapro": ({"llamapro_num_new_blocks": 2}, 2 * BLOCK),
    "adapter": ({"adapter_length": 8}, (H * 8 + 8 + 8 * H + H) * LAYERS),
    "reft": ({"reft_rank": R}, (H * R + H * R + R) * LAYERS),             # rotation R and learned source W, b
}


@pytest.mark.parametrize("train_type", sorted(FORMULAS))
def test_trainable_parameters_match_the_formula(train_type):
    if train_type == "reft":
        pytest.importorskip("pyreft")
    extra, expected = FORMULAS[train_type]
    model = apply_tuner(tiny(), args(train_type, **extra))
    trainable, total = count_parameters(model)
    assert trainable == expected
    ids = torch.randint(3, 64, (2, 7))
    model(input_ids=ids, labels=ids).loss.backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == {n for n, p in model.named_parameters() if p.requires_grad}


def test_lora_target_regex_adapts_only_matching_layers():
    model = apply_tuner(tiny(), args("lora", lora_rank=R, target_regex=r".*\.self_attn\.(q|v)_proj"))
    trainable, _ = count_parameters(model)
    assert trainable == (R * (H + H) + R * (H + KV)) * LAYERS
    adapted = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in model.named_parameters() if "lora_A" in n}
    assert adapted == {"q_proj", "v_proj"}


def test_llamapro_keeps_answers_at_step_zero_and_grows_the_config():
    base = tiny().eval()
    ids = torch.randint(3, 64, (2, 9))
    before = base(input_ids=ids).logits
    expanded = apply_tuner(base, args("llamapro", llamapro_num_new_blocks=1)).eval()
    assert expanded.config.num_hidden_layers == LAYERS + 1
    assert torch.allclose(expanded(input_ids=ids).logits, before, atol=1e-5)


def test_adapter_keeps_answers_at_step_zero():
    base = tiny().eval()
    ids = torch.randint(3, 64, (2, 9))
    before = base(input_ids=ids).logits
    assert torch.allclose(apply_tuner(base, args("adapter", adapter_length=8)).eval()(input_ids=ids).logits, before)


def test_reft_keeps_learning_under_weight_decay_and_reloads_the_same(tmp_path):
    """LoReFT's R is torch's Householder parametrization, which reads the diagonal of its stored matrix as signs:
    weight decay (AdamW, --weight_decay 0.1 by default) once turned them to 0, zeroed R and stopped every gradient."""
    pytest.importorskip("pyreft")
    from swiftall.tuners import reft

    model = apply_tuner(tiny(), args("reft", reft_rank=R, weight_decay=0.1))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.1)
    ids = torch.randint(3, 64, (2, 7))
    for _ in range(3):
        model(input_ids=ids, labels=ids).loss.backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable if p.ndim == 2)
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(str(tmp_path))   # right after a step: the decayed signs must not reach the file
    model.eval()
    torch.manual_seed(123)   # another random state than training's: the rebuilt R must not depend on it
    reloaded = reft.load(tiny(), tmp_path)
    with torch.no_grad():
        assert torch.allclose(reloaded(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-5)

"""Mixed-adapter batches through stacked LoRA weights (swiftall/infer/lora_batch.py) give peft's own results."""
from __future__ import annotations

import torch


def _model_with_adapters():
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=200, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    first = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    model = get_peft_model(LlamaForCausalLM(config), first, adapter_name="one")
    model.add_adapter("two", LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj", "o_proj", "down_proj"]))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.2)  # peft starts B at zero: make each adapter change the answers
    for param in model.parameters():
        param.requires_grad_(False)  # served adapters are loaded frozen
    return model.eval()


def _logits(model, ids, names):
    with torch.no_grad():
        return model(input_ids=ids, adapter_names=names).logits


def test_stacked_mixed_batch_equals_peft_and_follows_weight_changes():
    from swiftall.infer.lora_batch import install

    model = _model_with_adapters()
    ids = torch.randint(0, 200, (5, 7))
    names = ["one", "__base__", "two", "one", "two"]
    expected = _logits(model, ids, names)
    alone = [_logits(model, ids[i:i + 1], [n]) for i, n in enumerate(names)]
    assert not torch.allclose(alone[0], alone[1], atol=1e-3) and not torch.allclose(alone[0], alone[2], atol=1e-3)
    assert install(model) == 2 * 4  # per layer: q (both adapters), v (one), o and down (two)
    torch.testing.assert_close(_logits(model, ids, names), expected, atol=1e-5, rtol=1e-5)
    assert all("_swiftall_stacks" in m.__dict__ for m in model.modules() if "_swiftall_peft_mixed" in m.__dict__)
    for i, n in enumerate(names):
        torch.testing.assert_close(_logits(model, ids[i:i + 1], [n]), alone[i], atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # an in-place update (an optimizer step) must reach the next forward
        model.base_model.model.model.layers[0].self_attn.q_proj.lora_B["two"].weight.add_(0.5)
    changed = _logits(model, ids, names)
    for module in model.modules():  # peft's own path on the changed weights
        if "_swiftall_peft_mixed" in module.__dict__:
            module._mixed_batch_forward = module._swiftall_peft_mixed
    torch.testing.assert_close(changed, _logits(model, ids, names), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(changed, expected, atol=1e-3)


def test_adapters_being_trained_keep_peft_path():
    """Scoring during training and GRPO's rollouts run the engine on trainable adapters, which an optimizer may update
    in place without a version bump: no stacks are built for them."""
    from swiftall.infer.lora_batch import install

    model = _model_with_adapters()
    for name, param in model.named_parameters():
        param.requires_grad_("lora_" in name)
    ids = torch.randint(0, 200, (3, 5))
    expected = _logits(model, ids, ["one", "two", "__base__"])
    install(model)
    torch.testing.assert_close(_logits(model, ids, ["one", "two", "__base__"]), expected)
    assert not any("_swiftall_stacks" in m.__dict__ for m in model.modules())

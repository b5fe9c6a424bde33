"""LoRA's default targets: all-linear (ms-swift's default), which on each registered text family is exactly its
attention and MLP projections; the output head stays untouched."""
import pytest
import torch

from swiftall.tuners import apply_tuner
from swiftall.utils.errors import ConfigError


class _Args:
    train_type, lora_rank, lora_alpha, lora_dropout = "lora", 4, 8, 0.0
    modules_to_save, use_dora, use_rslora = [], False, False
    freeze_vit, freeze_aligner, freeze_llm = True, True, False

    def __init__(self, target_modules):
        self.target_modules = target_modules


def _tiny(kind):
    import transformers

    config_cls, model_cls = {"llama": ("LlamaConfig", "LlamaForCausalLM"),
                             "phi3": ("Phi3Config", "Phi3ForCausalLM")}[kind]
    config = getattr(transformers, config_cls)(vocab_size=64, hidden_size=16, intermediate_size=32,
                                               num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                               pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    return getattr(transformers, model_cls)(config)


def _adapted(model) -> set:
    """Module names (last part) that carry LoRA weights."""
    return {name.split(".lora_A")[0].rsplit(".", 1)[-1] for name, _ in model.named_parameters() if "lora_A" in name}


@pytest.mark.parametrize("kind,projections", [
    ("llama", {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}),
    ("phi3", {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}),
])
def test_default_targets_are_the_families_projections(kind, projections):
    model = apply_tuner(_tiny(kind), _Args(["all-linear"]))
    assert _adapted(model) == projections
    assert not any("lm_head" in name and "lora" in name for name, _ in model.named_parameters())


def test_named_targets_and_a_wrong_name():
    model = apply_tuner(_tiny("llama"), _Args(["q_proj", "v_proj"]))
    assert _adapted(model) == {"q_proj", "v_proj"}
    with pytest.raises(ConfigError, match="--target_modules nope"):
        apply_tuner(_tiny("llama"), _Args(["nope"]))

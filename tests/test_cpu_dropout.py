"""LoRA's dropout on a CPU (swiftall/tuners/cpu_dropout.py): the same distribution, scale and gradient as torch's
dropout, reproducible under a seed, and installed in every LoRA layer that has a dropout."""
import math

import pytest
import torch
from torch import nn

from swiftall.tuners import apply_tuner
from swiftall.tuners.cpu_dropout import CpuDropout
from test_tuners import _Args, _tiny


@pytest.mark.parametrize("p", [0.05, 0.5])
def test_masks_keep_1_minus_p_and_scale_as_torch_does(p):
    x = torch.randn(1000, 1000, requires_grad=True)
    torch.manual_seed(0)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.dtype) or t, lambda t: t):
        out = CpuDropout(p)(x)
    assert saved == [torch.bool]   # the backward keeps the mask as booleans (torch's dropout: float32 noise)
    keep = out != 0
    n = keep.numel()
    assert abs(keep.float().mean().item() - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n)   # 5 sigma
    reference = torch.nn.functional.dropout(x, p, True)   # torch's own kept values: x / (1 - p)
    kept_by_both = keep & (reference != 0)
    assert torch.equal(out[kept_by_both], reference[kept_by_both])
    out.sum().backward()
    assert torch.equal(x.grad, keep.float() / (1 - p))   # the backward multiplies by the same mask and scale
    # neighbouring elements and rows are independent: no pattern of draws repeats
    assert 0.0 < keep[:, 0].float().mean().item() < 1.0 and not torch.equal(keep[0], keep[1])


def test_seeded_masks_repeat_and_eval_mode_is_the_identity():
    x = torch.randn(64, 32)
    dropout = CpuDropout(0.1)
    torch.manual_seed(7)
    first = dropout(x)
    torch.manual_seed(7)
    assert torch.equal(dropout(x), first)
    assert not torch.equal(dropout(x), first)             # the next draw differs
    dropout.eval()
    assert torch.equal(dropout(x), x)
    assert torch.equal(CpuDropout(0.0)(x), x)
    assert torch.equal(CpuDropout(1.0)(x), torch.zeros_like(x))


def test_lora_layers_get_it_and_train():
    args = _Args(["all-linear"])
    args.lora_dropout = 0.05
    model = apply_tuner(_tiny("llama"), args)
    dropouts = [d for m in model.modules() if isinstance(getattr(m, "lora_dropout", None), nn.ModuleDict)
                for d in m.lora_dropout.values()]
    assert len(dropouts) == 7 and all(type(d) is CpuDropout and d.p == 0.05 for d in dropouts)
    model.train()
    ids = torch.randint(3, 64, (2, 12))
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)
    args.lora_dropout = 0.0   # no dropout: peft's Identity stays
    model = apply_tuner(_tiny("llama"), args)
    assert not any(isinstance(m, CpuDropout) for m in model.modules())

"""QLoRA's load keeps no fp32 checkpoint in memory: a checkpoint that fits is read (not memory-mapped) for quantizing,
so once the base is loaded no mapping of its .safetensors file is left in the process (a mapped file stayed resident
for the whole run: 0.5 GiB of SmolLM2-135M), and its weights are 4-bit."""
import pytest

from swiftall.config import SftConfig
from swiftall.models import resolve_model
from swiftall.tuners.quant import load_base


def mapped(folder):
    with open("/proc/self/maps") as maps:
        return [line for line in maps if str(folder) in line and ".safetensors" in line]


def test_qlora_base_leaves_no_checkpoint_mapped(tiny_dir, tmp_path):
    pytest.importorskip("bitsandbytes")
    import shutil

    import bitsandbytes as bnb

    # a copy of its own: other tests of the session may still hold models mapped from the shared tiny_dir
    tiny_dir = shutil.copytree(tiny_dir, tmp_path / "tiny")
    cfg = SftConfig.from_any({"model": str(tiny_dir), "dataset": ["d.jsonl"], "quant_method": "bnb",
                              "quant_bits": 4, "torch_dtype": "float32"})
    model = load_base(resolve_model(str(tiny_dir)), cfg)
    assert isinstance(model.model.layers[0].mlp.down_proj, bnb.nn.Linear4bit)
    assert mapped(tiny_dir) == []
    plain = load_base(resolve_model(str(tiny_dir)), SftConfig.from_any({"model": str(tiny_dir), "dataset": ["d.jsonl"],
                                                                        "torch_dtype": "float32"}))
    assert mapped(tiny_dir), "a plain (LoRA) load maps its checkpoint as before: this test could not tell"
    del plain

"""swiftall's own tuners (bottleneck adapters, ReFT) resume: a run continued from its checkpoint-3 logs the same
losses at steps 4-6 as the uninterrupted run and ends with the same tuner weights (tiny random llama)."""
import json

import pytest
from safetensors.torch import load_file

from swiftall import sft_main

pytestmark = pytest.mark.slow   # four short sft runs
ROWS = [{"messages": [{"role": "user", "content": f"Say {w}"}, {"role": "assistant", "content": f"{w} {w}!"}]}
        for w in ["apple", "river", "stone", "cloud", "green", "quick", "silver", "table"]]
TUNERS = {"adapter": {"adapter_length": 8}, "reft": {"reft_rank": 4}}


def config(tiny_dir, data, out, train_type, **extra):
    return {"model": str(tiny_dir), "dataset": [str(data)], "output_dir": str(out), "train_type": train_type,
            "max_steps": 6, "per_device_train_batch_size": 2, "save_steps": 3, "logging_steps": 1,
            "learning_rate": 5e-3, "report_to": ["none"], **TUNERS[train_type], **extra}


def losses(run):
    return {r["step"]: r["loss"] for r in map(json.loads, (run / "logging.jsonl").read_text().splitlines())
            if "loss" in r}


@pytest.mark.parametrize("train_type", sorted(TUNERS))
def test_own_tuner_resumes_where_it_stopped(train_type, tiny_dir, tmp_path):
    if train_type == "reft":
        pytest.importorskip("pyreft")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    sft_main(config(tiny_dir, data, whole, train_type))
    sft_main(config(tiny_dir, data, resumed, train_type, resume_from_checkpoint=str(whole / "checkpoint-3")))
    first, again = losses(whole), losses(resumed)
    assert sorted(again) == [4, 5, 6]
    assert len({round(first[s], 4) for s in (1, 4, 6)}) == 3   # it trains: the losses move
    for step in (4, 5, 6):
        assert again[step] == pytest.approx(first[step], rel=1e-4), (step, first, again)
    ended, continued = load_file(str(whole / "adapter_model.safetensors")), load_file(
        str(resumed / "adapter_model.safetensors"))
    assert ended.keys() == continued.keys()
    for name, tensor in ended.items():
        assert continued[name].allclose(tensor, atol=1e-5), name

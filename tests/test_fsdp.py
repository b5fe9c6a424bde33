"""FSDP2 on CPU as swiftall applies it (train/fsdp.py) and the stall watchdog (train/watchdog.py), below the CLI.

The end-to-end runs (losses equal DDP's, the saved model, a sleeping rank) are in test_distributed.py."""
from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest


def _tiny_model(lora: bool):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=101, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    return model


def _shard_worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist
    from torch.distributed.tensor import DTensor

    from swiftall.train.fsdp import is_sharded, local_share, shard_model

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    report = {}
    for lora in (False, True):
        model = shard_model(_tiny_model(lora), reshard_after_forward=True, world_size=2)
        shapes = {name: (list(p.to_local().shape), list(p.shape)) if isinstance(p, DTensor) else None
                  for name, p in model.named_parameters()}
        report["lora" if lora else "full"] = {"sharded": is_sharded(model), "shapes": shapes,
                                              "share": local_share(model)}
    Path(out, f"rank{rank}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


@pytest.mark.slow
def test_fully_shard_leaves_each_of_two_ranks_half_of_every_parameter(tmp_path):
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_shard_worker, args=(port, str(tmp_path)), nprocs=2)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for kind in ("full", "lora"):
        zero, one = ranks[0][kind], ranks[1][kind]
        assert zero["sharded"] and one["sharded"]
        assert any(".lora_A." in name for name in zero["shapes"]) == (kind == "lora")
        for name, shape in zero["shapes"].items():
            assert shape is not None, f"{name} is not a DTensor: the model was not sharded"
            (local0, full), (local1, _) = shape, one["shapes"][name]
            assert local0[0] + local1[0] == full[0] and local0[1:] == full[1:], name  # rows split, not copied
            assert abs(local0[0] - local1[0]) <= 1, name  # about half each
        held = zero["share"][0] + one["share"][0]
        assert held == zero["share"][1] and abs(zero["share"][0] - held / 2) <= 0.01 * held


def test_optimizer_state_by_names_and_by_index_round_trip():
    """optimizer.pt of an FSDP run is in torch's own layout, so DDP and 1-process runs resume from it (and back)."""
    import torch

    from swiftall.train.fsdp import indexed, named

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))
    params = list(model.named_parameters())
    optimizer = torch.optim.AdamW([{"params": [p for n, p in params if "weight" in n]},
                                   {"params": [p for n, p in params if "bias" in n], "weight_decay": 0.0}])
    model(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    saved = optimizer.state_dict()
    by_name = named(saved, model, optimizer)
    assert by_name["param_groups"][1]["params"] == ["0.bias", "1.bias", "2.bias"]
    assert torch.equal(by_name["state"]["2.weight"]["exp_avg"], optimizer.state[model[2].weight]["exp_avg"])
    back = indexed(by_name)
    assert back["param_groups"] == saved["param_groups"] and sorted(back["state"]) == sorted(saved["state"])
    small = torch.optim.AdamW(model[0].parameters())
    with pytest.raises(Exception, match="other parameter groups"):
        named(saved, model, small)


def test_the_watchdog_writes_this_ranks_stacks_and_names_where_it_waits(tmp_path, caplog):
    import re
    from types import SimpleNamespace

    from swiftall.train.watchdog import StallWatchdog, stall_seconds

    dog = StallWatchdog(0.5, tmp_path)
    dog.on_train_begin(None, SimpleNamespace(global_step=7), None)
    _a_long_step()
    dog.on_train_end(None, None, None)
    text = (tmp_path / "stall-rank0.txt").read_text()
    assert re.match(r"rank 0 of 1: no training step completed for \d s \(--stall_timeout 0.5; last step 7\)", text)
    assert "_a_long_step" in text and "most recent call first" in text
    assert "main thread in _a_long_step" in caplog.text and text.count("rank 0 of 1") == 1
    assert stall_seconds(SimpleNamespace(stall_timeout=0, ddp_timeout=60)) is None
    assert stall_seconds(SimpleNamespace(stall_timeout=None, ddp_timeout=60)) is None  # one process: off


def _a_long_step() -> None:
    time.sleep(1.5)

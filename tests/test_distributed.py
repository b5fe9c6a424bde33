"""Scale-out: the torchrun relaunch, its flags and errors, and the proof that 2 processes train the same model as 1.

The slow tests run `swiftall sft` as a user would (NPROC_PER_NODE=2, gloo on this CPU) on the tiny llama."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from swiftall.cli.launch import launch_plan, maybe_relaunch, torchrun_command
from swiftall.cli.main import main
from swiftall.config import SftConfig
from swiftall.utils.errors import ConfigError

from conftest import chat

BASE = ["--model", "m", "--dataset", "d.jsonl"]


def sft(*flags: str) -> SftConfig:
    return SftConfig.from_any([*BASE, *flags])


def test_flags_then_environment_then_one_process():
    assert launch_plan(sft(), {}).world_size == 1
    plan = launch_plan(sft(), {"NPROC_PER_NODE": "2", "NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.0.0.1"})
    assert (plan.nproc_per_node, plan.nnodes, plan.node_rank, plan.master_addr, plan.master_port) == \
        (2, 2, 1, "10.0.0.1", 29500)
    plan = launch_plan(sft("--nproc_per_node", "4", "--master_port", "1234"), {"NPROC_PER_NODE": "2"})
    assert (plan.nproc_per_node, plan.master_port, plan.world_size) == (4, 1234, 4)


def test_launched_processes_share_the_cpus_unless_the_user_set_the_threads(monkeypatch):
    from swiftall.utils import env

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(env, "usable_cpus", lambda: 16)
    assert env.launch_environment(4)["OMP_NUM_THREADS"] == "4" and env.launch_environment(32)["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert env.launch_environment(4)["OMP_NUM_THREADS"] == "3"


def test_torchrun_command_is_standalone_on_one_machine_and_explicit_across_machines():
    one = torchrun_command(launch_plan(sft("--nproc_per_node", "2"), {}), "sft", ["--x", "1"])
    assert one[1:5] == ["-m", "swiftall.cli.torchrun", "--nproc_per_node=2", "--standalone"]
    assert one[-5:] == ["-m", "swiftall.cli.main", "sft", "--x", "1"]
    many = torchrun_command(launch_plan(sft(), {"NPROC_PER_NODE": "8", "NNODES": "4", "NODE_RANK": "3",
                                                "MASTER_ADDR": "h0", "MASTER_PORT": "6000"}), "sft", [])
    assert {"--nnodes=4", "--node_rank=3", "--master_addr=h0", "--master_port=6000"} <= set(many)
    assert "--standalone" not in many


@pytest.mark.parametrize("flags, message", [
    (["--nproc_per_node", "0"], "--nproc_per_node must be at least 1"),
    (["--master_port", "70000"], "--master_port must be a TCP port"),
    (["--nnodes", "2", "--node_rank", "2"], "--node_rank 2 with --nnodes 2"),
    (["--deepspeed", "zero9"], "--deepspeed zero9: not one of zero0"),
    (["--deepspeed", "missing.json"], "--deepspeed missing.json: no such file"),
    (["--fsdp", "full"], "did you mean full_shard"),
    (["--fsdp", "full_shard", "--deepspeed", "zero3"], "choose one sharding engine"),
    (["--ddp_timeout", "0"], "--ddp_timeout must be at least 1"),
    (["--stall_timeout", "1800"], "fewer seconds than --ddp_timeout 1800"),
])
def test_bad_flags_name_the_flag(flags, message):
    with pytest.raises(ConfigError, match=message):
        sft(*flags)


def test_bad_environment_variable_is_named():
    with pytest.raises(ConfigError, match="NPROC_PER_NODE='two'"):
        launch_plan(sft(), {"NPROC_PER_NODE": "two"})
    with pytest.raises(ConfigError, match="NNODES=0: must be at least 1"):
        launch_plan(sft(), {"NNODES": "0"})


def test_several_machines_need_a_shared_output_dir(monkeypatch):
    for name in ("LOCAL_RANK", "WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NNODES", "2")
    monkeypatch.setenv("NPROC_PER_NODE", "1")
    with pytest.raises(ConfigError, match="several machines needs --output_dir"):
        maybe_relaunch("sft", BASE, SftConfig)


def test_a_process_started_by_a_launcher_runs_as_is_and_errors_name_its_rank(monkeypatch, capsys):
    import logging

    monkeypatch.setattr(logging.getLogger("swiftall"), "level", logging.getLogger("swiftall").level)  # rank 1 quiets it
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("NPROC_PER_NODE", "2")  # inside torchrun: not launched again
    assert maybe_relaunch("sft", [*BASE, "--output_dir", "o"], SftConfig) is None
    assert main(["sft", *BASE]) == 2  # no --output_dir: each process would name its own folder
    err = capsys.readouterr().err
    assert "swiftall sft (rank 1 of 2): error:" in err and "--output_dir" in err


def test_a_failed_launch_names_the_last_checkpoint_to_resume_from(tmp_path, monkeypatch, capsys):
    for name in ("LOCAL_RANK", "WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    ckpt = tmp_path / "run" / "checkpoint-2"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text("{}")
    (ckpt / "model.safetensors").write_text("")
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, **kwargs: calls.append(cmd) or 1)
    assert maybe_relaunch("sft", [*BASE, "--nproc_per_node", "2", "--output_dir", str(tmp_path / "run")],
                          SftConfig) == 1
    assert calls and calls[0][:3] == [sys.executable, "-m", "swiftall.cli.torchrun"]
    err = capsys.readouterr().err
    assert f"Last complete checkpoint: {ckpt}; continue with --resume_from_checkpoint {tmp_path / 'run'}" in err


def test_a_zero_checkpoint_resumes_on_its_own_number_of_processes_only(tmp_path, monkeypatch):
    for name in ("LOCAL_RANK", "WORLD_SIZE", "RANK", "NPROC_PER_NODE"):
        monkeypatch.delenv(name, raising=False)
    ckpt = tmp_path / "run" / "checkpoint-2"
    (ckpt / "global_step2").mkdir(parents=True)
    for rank in (0, 1):
        (ckpt / "global_step2" / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt").write_text("")
    (ckpt / "trainer_state.json").write_text("{}")
    (ckpt / "model.safetensors").write_text("")
    (ckpt / "latest").write_text("global_step2")
    with pytest.raises(ConfigError, match="a DeepSpeed ZeRO checkpoint .saved by 2 processes.; resume it with the "
                                          "same --deepspeed setting"):
        maybe_relaunch("sft", [*BASE, "--resume_from_checkpoint", str(ckpt)], SftConfig)
    if importlib.util.find_spec("deepspeed") is None:
        return
    # shards DeepSpeed cannot read: its converter's failure, and what to do instead
    with pytest.raises(ConfigError, match=r"could not convert its ZeRO shards for 1 process\(es\)(.|\n)*Resume on 2 "
                                          r"processes instead"):
        maybe_relaunch("sft", [*BASE, "--resume_from_checkpoint", str(ckpt), "--deepspeed", "zero2"], SftConfig)
    assert not (ckpt / "latest_universal").exists() and not list(ckpt.glob("*universal*"))  # nothing half-made
    # converted: each process's config loads the universal state, the user's own checkpoint entries kept
    from swiftall.train.universal import with_universal

    (ckpt / "global_step2_universal" / "zero").mkdir(parents=True)
    (ckpt / "latest_universal").write_text("global_step2_universal")
    mine = {"zero_optimization": {"stage": 2}, "checkpoint": {"tag_validation": "Warn"}}
    assert with_universal(mine, ckpt, 1)["checkpoint"] == {"tag_validation": "Warn", "load_universal": True}
    assert with_universal(mine, ckpt, 2) is mine  # its own number of processes: the shards as they are


def test_deepspeed_presets_ship_with_auto_values_and_fsdp_on_cpu_is_sharded_by_sft_or_refused(tmp_path):
    from swiftall.config import RlhfConfig
    from swiftall.train.distributed import check_engine, deepspeed_config, fsdp_config, shards_itself

    for stage in (0, 1, 2, 3):
        config = deepspeed_config(f"zero{stage}")
        assert config["zero_optimization"]["stage"] == stage
        assert config["train_micro_batch_size_per_gpu"] == "auto"
    assert deepspeed_config("zero3_offload")["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert fsdp_config("shard_grad_op") == {"version": 2, "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                                            "state_dict_type": "FULL_STATE_DICT", "reshard_after_forward": False}
    sharded = tmp_path / "fsdp.json"
    sharded.write_text('{"state_dict_type": "SHARDED_STATE_DICT"}')
    with pytest.raises(ConfigError, match="swiftall saves FULL_STATE_DICT"):  # checkpoints need no consolidation
        fsdp_config(str(sharded))
    assert shards_itself(sft("--fsdp", "full_shard"), on_cpu=True)  # swiftall applies fully_shard itself
    assert not shards_itself(sft("--fsdp", "full_shard"), on_cpu=False)  # accelerate does, on GPUs
    check_engine(sft("--fsdp", "full_shard"), on_cpu=True)
    with pytest.raises(ConfigError, match="--train_type ia3: swiftall shards full and lora training itself"):
        check_engine(sft("--fsdp", "full_shard", "--train_type", "ia3"), on_cpu=True)
    with pytest.raises(ConfigError, match="scoring by generation during training runs on rank 0 alone"):
        check_engine(sft("--fsdp", "full_shard", "--eval_dataset", "gsm8k"), on_cpu=True)
    with pytest.raises(ConfigError, match="silently train as plain DDP"):  # TRL's trainers are not hooked
        check_engine(RlhfConfig.from_any([*BASE, "--fsdp", "full_shard"]), on_cpu=True)


def test_missing_deepspeed_and_fsdp_on_cpu_are_refused_before_any_process_starts(monkeypatch, capsys):
    for name in ("LOCAL_RANK", "WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(sys.modules, "deepspeed", None)  # as if not installed
    monkeypatch.setattr(subprocess, "call", lambda *a, **k: pytest.fail("a process was started"))
    assert main(["sft", *BASE, "--nproc_per_node", "2", "--deepspeed", "zero2"]) == 2
    assert "pip install 'swiftall[deepspeed]'" in capsys.readouterr().err
    import torch

    if not torch.cuda.is_available():
        assert main(["rlhf", *BASE, "--nproc_per_node", "2", "--fsdp", "full_shard"]) == 2
        assert "silently train as plain DDP" in capsys.readouterr().err


def test_doctor_names_a_busy_master_port_and_an_unwritable_output_folder(tmp_path, capsys):
    from swiftall.cli.doctor import _port_check, _writable

    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        ok, text = _port_check({"MASTER_PORT": str(busy.getsockname()[1])})
    assert not ok and "pick another --master_port" in text
    assert _port_check({"NODE_RANK": "1", "MASTER_ADDR": "no-such-host.invalid"})[0] is False
    (tmp_path / "file").write_text("x")
    ok, text = _writable(tmp_path / "file" / "run")
    assert not ok and "not writable" in text
    assert _writable(tmp_path / "run")[0]
    assert main(["doctor", "--bogus"]) == 2
    assert "usage: swiftall doctor [--dist]" in capsys.readouterr().err


@pytest.mark.slow
def test_doctor_dist_all_reduces_over_gloo(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    assert main(["doctor", "--dist", "--output_dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("ok  ") == 4 and "gloo all-reduce: 2 local processes, 16 MiB" in out


def _doctor_node(rank: int, port: int, cwd: Path, output_dir: str, extra_path: str = "",
                 timeout: int = 60) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "NPROC_PER_NODE")}
    if extra_path:
        clean["PYTHONPATH"] = os.pathsep.join(filter(None, [extra_path, clean.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "swiftall.cli.main", "doctor", "--dist", "--nnodes", "2", "--node_rank", str(rank),
           "--master_addr", "127.0.0.1", "--master_port", str(port), "--output_dir", output_dir,
           "--timeout", str(timeout)]
    return subprocess.Popen(cmd, cwd=cwd, env=clean, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_doctor_across_nodes_names_the_node_whose_packages_or_folder_differ(tmp_path):
    """Two "nodes" on this machine meet at the master: with one shared folder and the same packages every check
    passes on both; a node with another trl and a folder of its own is named by both nodes, with what differs."""
    shared = tmp_path / "shared"
    port = _free_port()
    nodes = [_doctor_node(r, port, tmp_path, str(shared)) for r in (0, 1)]
    outs = [n.communicate(timeout=180)[0] for n in nodes]
    for node, out in zip(nodes, outs):
        assert node.returncode == 0, out[-3000:]
        assert "ok   same packages: the same on all 2 nodes" in out
        assert f"ok   shared output folder: {shared.resolve()} is the same folder on every node" in out
        assert re.search(r"ok   gloo all-reduce: 2 nodes, 16 MiB in [\d.]+ ms", out)
        assert "node 1" in out and "GiB RAM free" in out
    assert not list(shared.glob(".swiftall-doctor-*"))  # the marker is cleaned up
    # node 1: another trl first on its path, and a relative --output_dir that is a folder of its own
    fake = tmp_path / "fake"
    (fake / "trl-0.0.1.dist-info").mkdir(parents=True)
    (fake / "trl-0.0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: trl\nVersion: 0.0.1\n")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    port = _free_port()
    nodes = [_doctor_node(0, port, tmp_path / "a", "out"), _doctor_node(1, port, tmp_path / "b", "out", str(fake))]
    outs = [n.communicate(timeout=180)[0] for n in nodes]
    for node, out in zip(nodes, outs):
        assert node.returncode != 0, out[-3000:]
        assert re.search(r"FAIL same packages: node 1 \([^)]*\): trl 0\.0\.1 \(node 0: [\d.]+\): install the same", out)
        assert f"FAIL shared output folder: node 1 (" in out and str(tmp_path / "b" / "out") in out
        assert "same packages, shared output folder failed" in out


@pytest.mark.slow
def test_doctor_names_a_node_that_never_comes(tmp_path):
    node = _doctor_node(0, _free_port(), tmp_path, str(tmp_path / "out"), timeout=5)
    out = node.communicate(timeout=120)[0]
    assert node.returncode != 0
    assert "FAIL nodes meet: node 0 of 2: the other nodes did not answer within" in out


# ---- the proof: real runs under torchrun on this CPU (gloo) ---------------------------------------------------


def _rows(n: int = 32) -> list[dict]:
    return [chat(f"What is {i} plus {i}?", f"{i} plus {i} is {2 * i}. " * (1 + i % 3)) for i in range(n)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(out: Path, model: Path, data: Path, batch: int, env: dict[str, str], *extra: str,
         wait: bool = True) -> subprocess.Popen | subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "swiftall.cli.main", "sft", "--model", str(model), "--dataset", str(data),
           "--train_type", "full", "--max_steps", "4", "--per_device_train_batch_size", str(batch),
           "--logging_steps", "1", "--learning_rate", "1e-3", "--save_steps", "2", "--report_to", "none",
           "--output_dir", str(out), *extra]
    clean = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "NPROC_PER_NODE")}
    if not wait:
        return subprocess.Popen(cmd, env=clean | env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc = subprocess.run(cmd, env=clean | env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _losses(out: Path, first_step: int = 1) -> list[float]:
    rows = [json.loads(line) for line in (out / "logging.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r and "train_loss" not in r and r["step"] >= first_step]


def _weights(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out / "model.safetensors"))


def assert_same_training(one: Path, other: Path, rel: float = 1e-3, atol: float = 1e-5, first_step: int = 1) -> None:
    import torch

    a, b = _losses(one, first_step), _losses(other, first_step)
    assert len(a) == len(b) == 5 - first_step, (a, b)
    assert a[0] != a[-1]  # it trained
    for x, y in zip(a, b):
        assert abs(x - y) <= rel * abs(x), (a, b)
    wa, wb = _weights(one), _weights(other)
    shared = wa.keys() & wb.keys()  # DeepSpeed also writes a tied lm_head.weight; the layers are the same
    assert len(shared) == min(len(wa), len(wb))
    for name in shared:
        assert torch.allclose(wa[name], wb[name], rtol=1e-4, atol=atol), name


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    """32 rows: 8 global batches of 4, so the 4 steps stay inside the first epoch (past an epoch's end a partial last
    batch is split differently: DDP pads each process's share to equal batches)."""
    data = tmp_path_factory.mktemp("dist") / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    return data


@pytest.fixture(scope="module")
def one_process(tiny_dir, data_file):
    folder, data = data_file.parent, data_file
    out = folder / "one"
    _run(out, tiny_dir, data, 4, {})
    return folder, data, out


@pytest.fixture(scope="module")
def ddp(one_process, tiny_dir):
    folder, data, _ = one_process
    two = folder / "two"
    proc = _run(two, tiny_dir, data, 2, {"NPROC_PER_NODE": "2"})
    assert "launching 2 process(es)" in proc.stderr
    return two


@pytest.mark.slow
def test_two_processes_of_batch_2_train_like_one_of_batch_4(one_process, ddp):
    _, _, one = one_process
    two = ddp
    assert_same_training(one, two)
    args = json.loads((two / "args.json").read_text())
    assert args["per_device_train_batch_size"] == 2
    log_steps = [json.loads(line)["step"] for line in (two / "logging.jsonl").read_text().splitlines()]
    assert log_steps.count(1) == 1  # one writer: rank 1 logged nothing
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(two)  # a plain Hugging Face folder


@pytest.mark.slow
def test_resume_on_a_different_number_of_processes_continues_the_same_run(one_process, ddp, tiny_dir):
    """1 process -> 2 and 2 -> 1 from checkpoint-2: the same step, learning rate and data position (steps 3-4 equal
    the uninterrupted runs)."""
    folder, data, one = one_process
    widened = folder / "resumed-on-2"
    _run(widened, tiny_dir, data, 2, {"NPROC_PER_NODE": "2"}, "--resume_from_checkpoint", str(one / "checkpoint-2"))
    assert_same_training(one, widened, first_step=3)
    narrowed = folder / "resumed-on-1"
    _run(narrowed, tiny_dir, data, 4, {}, "--resume_from_checkpoint", str(ddp / "checkpoint-2"))
    assert_same_training(ddp, narrowed, first_step=3)


@pytest.mark.slow
def test_zero_resumes_on_another_number_of_processes(one_process, tiny_dir):
    """ZeRO-2, 2 processes -> 1 and 1 -> 2 from checkpoint-2: DeepSpeed's universal checkpoint, converted once by the
    launcher; steps 3-4 (losses, learning rate, final weights) equal the uninterrupted runs."""
    pytest.importorskip("deepspeed", reason="DeepSpeed is not installed: pip install 'swiftall[deepspeed]'")
    folder, data, _ = one_process
    two = folder / "zero2-two"
    _run(two, tiny_dir, data, 2, {"NPROC_PER_NODE": "2"}, "--deepspeed", "zero2")
    narrowed = folder / "zero2-resumed-on-1"
    proc = _run(narrowed, tiny_dir, data, 4, {}, "--deepspeed", "zero2", "--resume_from_checkpoint",
                str(two / "checkpoint-2"))
    assert "converting it to DeepSpeed's universal checkpoint" in proc.stderr
    assert (two / "checkpoint-2" / "latest_universal").read_text() == "global_step2_universal"
    assert_same_training(two, narrowed, first_step=3)
    one = folder / "zero2-one"
    _run(one, tiny_dir, data, 4, {}, "--deepspeed", "zero2")
    widened = folder / "zero2-resumed-on-2"
    _run(widened, tiny_dir, data, 2, {"NPROC_PER_NODE": "2"}, "--deepspeed", "zero2", "--resume_from_checkpoint",
         str(one / "checkpoint-2"))
    assert_same_training(one, widened, first_step=3)
    lr = {r["step"]: r["learning_rate"] for r in map(json.loads, (widened / "logging.jsonl").read_text().splitlines())
          if "learning_rate" in r}
    assert lr == {r["step"]: r["learning_rate"] for r in map(json.loads, (one / "logging.jsonl").read_text()
                                                             .splitlines()) if "learning_rate" in r and r["step"] >= 3}


@pytest.mark.slow
def test_two_nodes_of_one_process_train_like_one_node(one_process, tiny_dir):
    """NNODES=2 on this machine, master 127.0.0.1: the multi-node path (explicit rendezvous, node ranks)."""
    folder, data, one = one_process
    out = folder / "nodes"
    port = str(_free_port())
    common = {"NNODES": "2", "NPROC_PER_NODE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
    nodes = [_run(out, tiny_dir, data, 2, common | {"NODE_RANK": str(r)}, wait=False) for r in (0, 1)]
    for node in nodes:
        output, _ = node.communicate(timeout=600)
        assert node.returncode == 0, output[-4000:]
    assert_same_training(one, out)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_deepspeed_zero_trains_like_ddp_and_saves_a_plain_model(stage, one_process, ddp, tiny_dir):
    pytest.importorskip("deepspeed", reason="DeepSpeed is not installed: pip install 'swiftall[deepspeed]' "
                                            "(DS_BUILD_OPS=0 is enough on CPU)")
    import torch
    from transformers import AutoModelForCausalLM

    folder, data, _ = one_process
    out = folder / stage
    _run(out, tiny_dir, data, 2, {"NPROC_PER_NODE": "2"}, "--deepspeed", stage)
    assert_same_training(ddp, out)
    model = AutoModelForCausalLM.from_pretrained(out)  # gathered from the shards by rank 0, a plain HF folder
    total = sum(p.numel() for p in model.parameters())
    saved = _weights(ddp)
    for name, param in model.state_dict().items():
        if name in saved:
            assert torch.allclose(param, saved[name], rtol=1e-4, atol=1e-5), name
    if stage == "zero3":  # each rank's optimizer holds half of the fp32 weights (the engine's own partition)
        shards = sorted((out / "checkpoint-4" / "global_step4").glob("zero_pp_rank_*_optim_states.pt"))
        assert len(shards) == 2
        for shard in shards:
            state = torch.load(shard, map_location="cpu", weights_only=False)["optimizer_state_dict"]
            held = sum(t.numel() for t in state["fp32_flat_groups"])
            assert abs(held - total / 2) <= 0.01 * total, (held, total)


@pytest.mark.slow
def test_a_killed_rank_stops_the_run_naming_it_and_the_last_checkpoint_and_resume_continues(data_file, tiny_dir):
    import time

    import psutil

    data = data_file
    out = data_file.parent / "killed"
    run = _run(out, tiny_dir, data, 2, {"NPROC_PER_NODE": "2"}, "--max_steps", "400", wait=False)
    deadline = time.time() + 400
    while not (out / "checkpoint-2").is_dir() and time.time() < deadline and run.poll() is None:
        time.sleep(0.5)
    assert (out / "checkpoint-2").is_dir(), "no checkpoint appeared"
    ranks = [p for p in psutil.Process(run.pid).children(recursive=True) if p.environ().get("RANK") == "1"]
    assert ranks, "rank 1 not found"
    ranks[0].kill()  # kill -9
    output, _ = run.communicate(timeout=300)
    assert run.returncode != 0
    assert re.search(r"rank\s*:\s*1\b", output), output[-3000:]  # torchrun's summary of the failed process
    assert "Last complete checkpoint" in output and f"--resume_from_checkpoint {out}" in output, output[-3000:]
    last = max(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))
    _run(out, tiny_dir, data, 2, {"NPROC_PER_NODE": "2"}, "--max_steps", str(last + 2),
         "--resume_from_checkpoint", str(out))
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == last + 2


# ---- FSDP2 on CPU (swiftall's own fully_shard) and the stall watchdog --------------------------------------------


def _adapter(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out / "adapter_model.safetensors"))


@pytest.mark.slow
def test_fsdp_on_cpu_shards_for_real_trains_like_ddp_and_saves_a_plain_model(one_process, ddp, tiny_dir):
    """--fsdp full_shard on CPU: each rank holds half of the parameters (not DDP), the same losses and weights as DDP,
    a plain HF folder, and a checkpoint that resumes on 1 process like the 1-process run."""
    from transformers import AutoModelForCausalLM

    folder, data, one = one_process
    out = folder / "fsdp"
    proc = _run(out, tiny_dir, data, 2, {"NPROC_PER_NODE": "2"}, "--fsdp", "full_shard")
    assert "fully_shard applied by swiftall to 2 decoder layers and the root over 2 processes" in proc.stderr
    assert "(50.0%), not DDP" in proc.stderr
    assert_same_training(ddp, out)
    assert sorted(_weights(out)) == sorted(_weights(ddp))  # the tied head is not saved twice
    AutoModelForCausalLM.from_pretrained(out)
    narrowed = folder / "fsdp-resumed-on-1"
    _run(narrowed, tiny_dir, data, 4, {}, "--resume_from_checkpoint", str(out / "checkpoint-2"))
    assert_same_training(one, narrowed, first_step=3)


@pytest.mark.slow
def test_fsdp_lora_on_cpu_trains_the_adapter_ddp_trains(data_file, tiny_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    runs = {}
    for name, extra in (("ddp-lora", ()), ("fsdp-lora", ("--fsdp", "shard_grad_op"))):
        runs[name] = data_file.parent / name
        _run(runs[name], tiny_dir, data_file, 2, {"NPROC_PER_NODE": "2"}, "--train_type", "lora",
             "--learning_rate", "1e-2", *extra)
    a, b = _losses(runs["ddp-lora"]), _losses(runs["fsdp-lora"])
    assert len(a) == len(b) == 4 and a[0] != a[-1]
    assert all(abs(x - y) <= 1e-3 * abs(x) for x, y in zip(a, b)), (a, b)
    wa, wb = _adapter(runs["ddp-lora"]), _adapter(runs["fsdp-lora"])
    assert sorted(wa) == sorted(wb) and len(wa) > 0
    for name in wa:
        assert torch.allclose(wa[name], wb[name], rtol=1e-4, atol=1e-6), name
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_dir), runs["fsdp-lora"])


SLEEPY = """import time
from swiftall.train.trainer import SwiftTrainer
from swiftall.utils.env import launched_world

_step = SwiftTrainer.training_step


def slow_training_step(self, *args, **kwargs):
    if launched_world()[0] == 1 and self.state.global_step == 1:
        time.sleep(8)  # rank 1 stalls before its second step; rank 0 waits for it in a collective
    return _step(self, *args, **kwargs)


SwiftTrainer.training_step = slow_training_step
"""


@pytest.mark.slow
def test_a_rank_made_to_sleep_is_named_and_every_rank_writes_its_stacks(data_file, tiny_dir):
    plugin = data_file.parent / "sleepy.py"
    plugin.write_text(SLEEPY)
    out = data_file.parent / "stalled"
    proc = _run(out, tiny_dir, data_file, 2, {"NPROC_PER_NODE": "2"}, "--stall_timeout", "3", "--plugin",
                str(plugin))
    assert re.search(r"rank 1 of 2: no training step completed for \d+ s \(--stall_timeout 3; last step 1\); "
                     r"main thread in slow_training_step", proc.stderr), proc.stderr[-3000:]  # where it is stuck
    assert "rank 0 of 2: no training step completed" in proc.stderr
    stacks = {r: (out / f"stall-rank{r}.txt").read_text() for r in (0, 1)}
    heads = {r: text.splitlines()[0] for r, text in stacks.items()}
    assert "main thread in slow_training_step" in heads[1] and "slow_training_step" not in heads[0], heads
    assert all("most recent call first" in text and "in sft_main" in text for text in stacks.values())

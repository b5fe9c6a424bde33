#!/usr/bin/env python3
"""Distributed overhead on this machine: `swiftall sft` with 1 process x batch 4 against 2 processes x batch 2 (the
same global batch, rows and steps; DDP over gloo, then FSDP2 full_shard as swiftall applies it on CPU), LoRA on the
embedded model.

LoRA dropout is off, so the two runs draw no different random masks and their losses must agree. Prints trained
tokens per second of each (the same tokens are trained in both, so the ratio is the inverse ratio of
the training loops' times), the losses' largest relative difference, and the communication share of a 2-process
step: the time of one gloo all-reduce of the trainable weights' gradient size (measured here, in the same run) over
the 2-process step time. On 2 shared CPU cores expect no speed-up: the point is correctness and the overhead.

    python benchmarks/bench_dist.py [--steps 4] [--model smollm2-135m-instruct] [--train_type lora]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peer import openmp_env


RUNNER = r"""
import json, sys
if sys.argv[1] == "--launch":  # through the CLI: NPROC_PER_NODE re-launches under torchrun
    from swiftall.cli.main import main
    sys.exit(main(["sft", *sys.argv[2:]]))
from swiftall.pipelines.sft import sft_main
summary = sft_main(sys.argv[1:])
print("BENCH_RESULT " + json.dumps({k: summary[k] for k in ("tokens", "trained_tokens")}))
"""


def run(out: Path, args: argparse.Namespace, batch: int, nproc: int, *extra: str) -> dict:
    """One process runs sft_main itself (its summary counts the tokens); two go through the CLI's torchrun launch."""
    flags = ["--model", args.model, "--dataset", args.dataset, "--train_type", args.train_type, "--lora_dropout", "0",
             "--max_steps", str(args.steps), "--per_device_train_batch_size", str(batch), "--logging_steps", "1",
             "--save_steps", "1000", "--report_to", "none", "--max_length", str(args.max_length),
             "--output_dir", str(out), *extra]
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}
    env["NPROC_PER_NODE"] = str(nproc)
    env.update(openmp_env())  # as the CLI chooses it: the 1-process run calls sft_main directly
    started = time.time()
    launch = ["--launch"] if nproc > 1 else []
    proc = subprocess.run([sys.executable, "-c", RUNNER, *launch, *flags], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{nproc} process(es) failed:\n{proc.stderr[-3000:]}")
    rows = [json.loads(line) for line in (out / "logging.jsonl").read_text().splitlines()]
    result = {"wall_s": time.time() - started, "loop_s": next(r for r in rows if "train_runtime" in r)["train_runtime"],
              "losses": [r["loss"] for r in rows if "loss" in r and "train_loss" not in r]}
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result.update(json.loads(line.split(" ", 1)[1]))
    return result


def trainable_params(model: str, train_type: str) -> int:
    from swiftall.config import SftConfig
    from swiftall.models import load_model, resolve_model
    from swiftall.tuners import apply_tuner, count_parameters

    cfg = SftConfig.from_any(["--model", model, "--dataset", "x", "--train_type", train_type])
    info = resolve_model(model)
    net = apply_tuner(load_model(info, "float32"), cfg, info.family)
    return count_parameters(net)[0]


def allreduce_s(numel: int) -> float:
    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    queue = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_worker, args=(port, numel, queue), nprocs=2, join=True)
    return queue.get()


def _worker(rank: int, port: int, numel: int, queue) -> None:
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    grad = torch.ones(numel)
    dist.all_reduce(grad)
    started = time.perf_counter()
    for _ in range(5):
        dist.all_reduce(grad)
    if rank == 0:
        queue.put((time.perf_counter() - started) / 5)
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="keep steps x 4 <= the rows: past an epoch's end the "
                        "last partial batch differs (DDP pads each process's share to equal batches)")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--dataset", default="swiftall-demo")
    parser.add_argument("--train_type", default="lora")
    parser.add_argument("--max_length", type=int, default=256)
    args = parser.parse_args()
    print(f"load: {os.popen('uptime').read().strip()}")
    with tempfile.TemporaryDirectory() as tmp:
        one = run(Path(tmp) / "one", args, batch=4, nproc=1)
        two = run(Path(tmp) / "two", args, batch=2, nproc=2)
        fsdp = run(Path(tmp) / "fsdp", args, 2, 2, "--fsdp", "full_shard")
    worst = max(abs(a - b) / abs(a) for a, b in zip(one["losses"], two["losses"]))
    worst_fsdp = max(abs(a - b) / abs(a) for a, b in zip(two["losses"], fsdp["losses"]))
    numel = trainable_params(args.model, args.train_type)
    comm = allreduce_s(numel)
    step2 = two["loop_s"] / args.steps
    tokens, trained = one["tokens"], one["trained_tokens"]  # the same rows in both runs
    print(f"{args.steps} steps, global batch 4, {args.train_type} on {args.model}: {tokens} tokens, {trained} trained")
    for name, r in (("1 process  x batch 4", one), ("2 processes x batch 2", two), ("2 processes, FSDP2", fsdp)):
        print(f"  {name}: training loop {r['loop_s']:.2f} s, {trained / r['loop_s']:.0f} trained tokens/s "
              f"({tokens / r['loop_s']:.0f} tokens/s); whole command {r['wall_s']:.1f} s")
    print(f"  speed 2 vs 1 process: {one['loop_s'] / two['loop_s']:.2f}x; losses' largest relative difference "
          f"{worst:.2e}")
    print(f"  FSDP2 full_shard vs DDP (2 processes): speed {two['loop_s'] / fsdp['loop_s']:.2f}x; losses' largest "
          f"relative difference {worst_fsdp:.2e}")
    print(f"  communication: one all-reduce of {numel:,} fp32 gradients over gloo {comm * 1000:.1f} ms = "
          f"{100 * comm / step2:.1f}% of a 2-process step ({step2 * 1000:.0f} ms)")
    print(f"load: {os.popen('uptime').read().strip()}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""DPO with LoRA on the embedded model: seconds per step and peak memory, and ms-swift side by side.

Uses dpo.jsonl from ../shared/bench/make_data.py (messages + rejected_response), its first --rows pairs whose
answers differ (swiftall refuses a pair with equal answers: it teaches nothing). The run is
`swiftall dpo` in its own process (so its peak memory is its own VmHWM). Both sides are timed the same way: the
training loop's seconds (trainer's train_runtime, first step included) over its steps, plus the whole command's
wall time; ours also prints steps 2.. alone from logging.jsonl. tokens_per_second counts chosen + rejected tokens
(pad excluded). With --ms_swift PATH/TO/swift, ms-swift's `swift rlhf --rlhf_type dpo` runs on the same pairs and
settings (LoRA r 8 on all linear layers, fp32, --max_length, batch, steps, learning rate, beta 0.1, sigmoid loss,
gradient checkpointing as --gradient_checkpointing says: both off by default here, ms-swift's own default is on),
and its peak is its largest process's (benchmarks/peer.py); both run with OpenMP's passive waits (swiftall's CLI
sets them; spinning waits cost several times the time on a shared CPU).

    python benchmarks/bench_dpo.py [--rows 64] [--steps 12] [--batch 2] [--max_length 256] [--dtype float32]
                                   [--gradient_checkpointing] [--ms_swift /path/to/venv/bin/swift]

Measured on the shared 2-core CPU with --steps 4, --max_length 512 and 4 pairs a step (same batches each time):
peak RSS 8.8 GiB with TRL's default LM-head tiles, 6.9 GiB with swiftall's smaller ones (train/rlhf/common.py),
3.6-3.9 GiB adding --gradient_checkpointing (about 1.5x the seconds per step); the losses agree to 1e-6.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peer import openmp_env, run_peer  # noqa: E402

MAKE_DATA = HERE.parent.parent / "shared" / "bench" / "make_data.py"
RUNNER = r"""
import json, sys
from swiftall.utils.env import choose_openmp_waits
choose_openmp_waits()  # as the CLI does, before torch loads
from swiftall import dpo_main
from swiftall.train.callbacks import peak_rss_kib
summary = dpo_main(json.loads(sys.argv[1]))
summary["peak_rss_kib"] = peak_rss_kib()
print("BENCH_RESULT " + json.dumps(summary))
"""


def bench_rows(rows: int, workdir: Path) -> Path:
    data = workdir / "data"
    subprocess.run([sys.executable, str(MAKE_DATA), str(data)], check=True, capture_output=True)
    path = workdir / f"dpo{rows}.jsonl"
    lines = (data / "dpo.jsonl").read_text().splitlines(keepends=True)
    pairs = [line for line in lines if _teaches(json.loads(line))]  # swiftall refuses a pair with equal answers
    path.write_text("".join(pairs[:rows]))
    return path


def _teaches(row: dict) -> bool:
    return row["messages"][-1]["content"] != row["rejected_response"]


def run_ours(args: argparse.Namespace, dataset: Path, out: Path, extra: dict | None = None) -> dict:
    config = {"model": "smollm2-135m-instruct", "dataset": [str(dataset)], "train_type": "lora",
              "torch_dtype": args.dtype, "max_length": args.max_length, "per_device_train_batch_size": args.batch,
              "max_steps": args.steps, "learning_rate": 5e-5, "save_steps": 100000, "logging_steps": 1,
              "report_to": ["none"], "output_dir": str(out), "gradient_checkpointing": args.gradient_checkpointing,
              **(extra or {})}
    started = time.time()
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(config)], capture_output=True, text=True)
    wall = time.time() - started
    if proc.returncode != 0:
        raise SystemExit(f"dpo failed:\n{proc.stderr[-3000:]}")
    summary = json.loads(proc.stdout.split("BENCH_RESULT ", 1)[1].splitlines()[0])
    log = [json.loads(line) for line in (out / "logging.jsonl").read_text().splitlines()]
    steps = [r for r in log if "loss" in r and "train_runtime" not in r]
    times = [b["elapsed_s"] - a["elapsed_s"] for a, b in zip(steps, steps[1:])]
    runtime = [r["train_runtime"] for r in log if "train_runtime" in r][-1]
    tps = [r["tokens_per_second"] for r in steps[1:] if "tokens_per_second" in r]
    cuda = max((r.get("memory_cuda_peak_gib", 0) for r in log), default=0)
    return {"side": "swiftall", "steps": summary["global_step"], "rows_kept": summary["rows"]["train"],
            "loop_s": round(runtime, 1), "s_per_step": round(runtime / summary["global_step"], 3),
            "s_per_step_after_first": round(sum(times) / max(len(times), 1), 3),
            "tokens_per_second": round(sum(tps) / len(tps), 1) if tps else None,
            "time_to_first_step_s": summary.get("time_to_first_step_s"),
            "peak_rss_gib": round(summary["peak_rss_kib"] / 2**20, 2), "peak_cuda_gib": cuda or None,
            "wall_s": round(wall, 1), "losses": [round(r["loss"], 4) for r in steps]}


def run_ms_swift(args: argparse.Namespace, dataset: Path, workdir: Path) -> dict:
    from swiftall.hub.embedded import embedded_model_dir

    out_dir = workdir / "ms-swift"
    cmd = [args.ms_swift, "rlhf", "--rlhf_type", "dpo", "--model", str(embedded_model_dir()), "--model_type", "llama",
           "--template", "chatml", "--dataset", str(dataset), "--tuner_type", "lora", "--torch_dtype", args.dtype,
           "--max_length", str(args.max_length), "--per_device_train_batch_size", str(args.batch),
           "--gradient_accumulation_steps", "1", "--num_train_epochs", "1", "--max_steps", str(args.steps),
           "--learning_rate", "5e-5", "--beta", "0.1", "--save_steps", "100000", "--logging_steps", "1",
           "--report_to", "none", "--split_dataset_ratio", "0", "--output_dir", str(out_dir),
           "--dataloader_num_workers", "0", "--dataset_num_proc", "1",
           "--gradient_checkpointing", str(args.gradient_checkpointing).lower()]
    run = run_peer(cmd, env={"CUDA_VISIBLE_DEVICES": "", **openmp_env()}, log_path=str(workdir / "ms-swift.log"))
    if run["returncode"] != 0:
        raise SystemExit(f"ms-swift failed ({' '.join(cmd)}):\n{run['text'][-3000:]}")
    runtime = float(re.findall(r"'train_runtime': '?([\d.]+)", run["text"])[-1])
    losses = [float(x) for x in re.findall(r"'loss': '?([\d.]+)", run["text"])]
    return {"side": "ms-swift", "steps": args.steps, "loop_s": round(runtime, 1),
            "s_per_step": round(runtime / args.steps, 3), "peak_rss_gib": round(run["peak_gib"], 2),
            "wall_s": round(run["wall_s"], 1), "losses": losses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=2, help="pairs per step")
    parser.add_argument("--max_length", type=int, default=256)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--gradient_checkpointing", action="store_true", help="recompute activations in backward")
    parser.add_argument("--ms_swift", help="path to ms-swift's `swift` executable, to run it side by side")
    parser.add_argument("--extra", default="{}", help="JSON of extra swiftall dpo flags for our run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        dataset = bench_rows(args.rows, workdir)
        results = [run_ours(args, dataset, workdir / "run", json.loads(args.extra))]
        print(json.dumps(results[0]), flush=True)
        if args.ms_swift:
            results.append(run_ms_swift(args, dataset, workdir))
            print(json.dumps(results[1]), flush=True)
    load = os.getloadavg()
    print(f"\nDPO, LoRA, {args.dtype}, max_length {args.max_length}, {args.batch} pairs a step, {args.steps} steps, "
          f"first {args.rows} pairs of dpo.jsonl (pairs with equal answers left out), gradient checkpointing "
          f"{'on' if args.gradient_checkpointing else 'off'} on both sides; load {load[0]:.2f} at the end")
    print(f"{'side':<10}{'s/step':>8}{'loop s':>8}{'wall s':>8}{'peak GiB':>10}")
    for r in results:
        print(f"{r['side']:<10}{r['s_per_step']:>8.2f}{r['loop_s']:>8.1f}{r['wall_s']:>8.1f}{r['peak_rss_gib']:>10.2f}")
    if len(results) == 2:
        ours, ms = results
        print(f"swiftall: {ms['s_per_step'] / ours['s_per_step']:.2f}x ms-swift's steps per second, "
              f"{ms['wall_s'] / ours['wall_s']:.2f}x its whole command, peak "
              f"{ours['peak_rss_gib'] / ms['peak_rss_gib']:.0%} of its peak")


if __name__ == "__main__":
    main()

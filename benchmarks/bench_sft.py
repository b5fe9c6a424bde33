#!/usr/bin/env python3
"""SFT throughput on the embedded model: LoRA, fp32, --max_length 512, batch 4, the first 192 rows of sft.jsonl.

Runs each batching variant in its own process on the same rows and prints trained tokens per second
(assistant tokens, the ones with a loss), all tokens per second (pad excluded), time to first step, peak memory,
and the ratio against plain padded batches. With --ms_swift PATH/TO/swift it also runs ms-swift's `swift sft`
on the same rows and settings, side by side, and prints our ratio against it.

    python benchmarks/bench_sft.py [--rows 192] [--steps N] [--variants plain,grouped,padding_free,packing]
                                   [--ms_swift /path/to/venv/bin/swift]
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
MAKE_DATA = HERE.parent.parent / "shared" / "bench" / "make_data.py"
VARIANTS = {
    "plain": {"group_by_length": False, "padding_free": False},
    "grouped": {"group_by_length": True, "padding_free": False},
    "padding_free": {"group_by_length": False, "padding_free": True},
    "packing": {"group_by_length": False, "packing": True},
}

RUNNER = r"""
import json, sys
from swiftall import sft_main
summary = sft_main(json.loads(sys.argv[1]))
print("BENCH_RESULT " + json.dumps(summary))
"""


def bench_rows(rows: int, workdir: Path) -> Path:
    data = workdir / "data"
    subprocess.run([sys.executable, str(MAKE_DATA), str(data)], check=True)
    path = workdir / f"sft{rows}.jsonl"
    path.write_text("".join((data / "sft.jsonl").read_text().splitlines(keepends=True)[:rows]))
    return path


def run_ours(name: str, dataset: Path, steps: int, workdir: Path, gc: str = "default") -> dict:
    config = {"model": "smollm2-135m-instruct", "dataset": [str(dataset)], "train_type": "lora",
              "torch_dtype": "float32", "max_length": 512, "per_device_train_batch_size": 4,
              "num_train_epochs": 1, "max_steps": steps, "learning_rate": 1e-4, "save_steps": 100000,
              "logging_steps": 5, "report_to": ["none"], "output_dir": str(workdir / name), **VARIANTS[name]}
    if gc != "default":
        config["gradient_checkpointing"] = gc == "true"
    started = time.time()
    out = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(config)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
    summary = json.loads(out.stdout.split("BENCH_RESULT ", 1)[1].splitlines()[0])
    log = [json.loads(l) for l in (workdir / name / "logging.jsonl").read_text().splitlines()]
    peak = max(r.get("memory_peak_rss_gib", 0) for r in log)
    loop = summary["train_loop_s"]
    return {"variant": name, "steps": summary["global_step"], "loop_s": loop, "wall_s": time.time() - started,
            "first_step_s": summary["time_to_first_step_s"], "trained_tok_s": summary["trained_tokens"] / loop,
            "tok_s": summary["tokens"] / loop, "peak_rss_gib": peak, "train_loss": summary["train_loss"],
            "s_per_step": loop / summary["global_step"]}


MS_SWIFT_SETTINGS = ("padded batches: ms-swift 4.6 refuses --padding_free/--packing without a flash-attention "
                     "implementation ('The \"padding_free\" feature requires a flash attention implementation', "
                     "swift/arguments/sft_args.py), which a CPU lacks; sdpa attention; gradient checkpointing {gc}")


def run_ms_swift(swift: str, dataset: Path, steps: int, model_dir: str, workdir: Path, gc: str) -> dict:
    """ms-swift 4.x on the same rows: LoRA, fp32, max_length 512, batch 4, its defaults otherwise."""
    out_dir = workdir / "ms-swift"
    cmd = [swift, "sft", "--model", model_dir, "--dataset", str(dataset), "--tuner_type", "lora",
           "--torch_dtype", "float32", "--max_length", "512", "--per_device_train_batch_size", "4",
           "--gradient_accumulation_steps", "1", "--num_train_epochs", "1", "--max_steps", str(steps),
           "--learning_rate", "1e-4", "--save_steps", "100000", "--logging_steps", "5", "--report_to", "none",
           "--split_dataset_ratio", "0", "--output_dir", str(out_dir), "--model_type", "llama", "--template", "chatml",
           "--dataloader_num_workers", "0", "--dataset_num_proc", "1"]
    if gc != "default":
        cmd += ["--gradient_checkpointing", gc]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    started = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.time() - started
    text = out.stdout + out.stderr
    if out.returncode != 0:
        raise SystemExit(f"ms-swift failed ({' '.join(cmd)}):\n{text[-3000:]}")
    runtime = float(re.findall(r"'train_runtime': '?([\d.]+)", text)[-1])
    first = wall - runtime
    return {"variant": "ms-swift", "steps": steps, "loop_s": runtime, "wall_s": wall, "first_step_s": first,
            "s_per_step": runtime / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=192)
    parser.add_argument("--steps", type=int, default=-1, help="optimizer steps per variant (default: one epoch)")
    parser.add_argument("--variants", default="plain,grouped,padding_free,packing")
    parser.add_argument("--ms_swift", help="path to ms-swift's `swift` executable, to run it side by side")
    parser.add_argument("--gradient_checkpointing", choices=("default", "true", "false"), default="default",
                        help="default: each tool's own default (swiftall off, ms-swift on); true/false: both sides")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-sft-"))
    dataset = bench_rows(args.rows, workdir)
    results = []
    for name in args.variants.split(","):
        results.append(run_ours(name, dataset, args.steps, workdir, args.gradient_checkpointing))
        print(f"{name}: {results[-1]}", flush=True)
    base = results[0]
    print(f"\nSFT benchmark: SmolLM2-135M-Instruct, LoRA, fp32, max_length 512, batch 4, {args.rows} rows of sft.jsonl, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(f"{'variant':<14}{'steps':>6}{'s/step':>8}{'trained tok/s':>15}{'tok/s':>9}{'1st step s':>11}"
          f"{'peak GiB':>9}{'loss':>8}{'vs ' + base['variant']:>12}")
    for r in results:
        print(f"{r['variant']:<14}{r['steps']:>6}{r['s_per_step']:>8.2f}{r['trained_tok_s']:>15.1f}{r['tok_s']:>9.1f}"
              f"{r['first_step_s']:>11.1f}{r['peak_rss_gib']:>9.2f}{r['train_loss']:>8.3f}"
              f"{r['trained_tok_s'] / base['trained_tok_s']:>11.2f}x", flush=True)
    if args.ms_swift:
        from swiftall.hub.embedded import embedded_model_dir

        steps = results[0]["steps"]
        gc = args.gradient_checkpointing
        ms = run_ms_swift(args.ms_swift, dataset, steps, str(embedded_model_dir()), workdir, gc)
        print(f"\nms-swift side by side ({steps} steps, same rows): {ms['s_per_step']:.2f} s/step, "
              f"{ms['first_step_s']:.0f} s before its first step")
        print("  ms-swift settings: " + MS_SWIFT_SETTINGS.format(gc={"default": "on (its default)"}.get(gc, gc)))
        print("  swiftall settings: the variants above (padding_free: per-sample SDPA attention, no flash-attn "
              f"needed); gradient checkpointing {({'default': 'off (its default)'}).get(gc, gc)}")
        for r in results:  # only variants that train on the same rows in the same order as ms-swift
            if r["steps"] == steps and r["variant"] in ("plain", "padding_free"):
                print(f"  swiftall {r['variant']:<13} {ms['s_per_step'] / r['s_per_step']:.2f}x ms-swift's throughput "
                      f"(same rows and steps); first step {r['first_step_s']:.0f} s vs {ms['first_step_s']:.0f} s")
    (workdir / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\nraw results: {workdir / 'results.json'}")


if __name__ == "__main__":
    main()

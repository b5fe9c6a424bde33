#!/usr/bin/env python3
"""DPO with LoRA on the embedded model at --max_length 512: seconds per step and peak memory.

Uses dpo.jsonl from ../shared/bench/make_data.py (messages + rejected_response). The run is `swiftall dpo` in its
own process (so its peak memory is its own); steps 2.. are timed from logging.jsonl (step 1 includes warm-up).
tokens_per_second counts chosen + rejected tokens (pad excluded); load_average is taken at the end (CPU timings
are only comparable on an idle machine).

    python benchmarks/bench_dpo.py [--rows 64] [--steps 8] [--batch 4] [--dtype float32] [--gradient_checkpointing]

Measured on the shared 2-core CPU with --steps 4 (same batches each time): peak RSS 8.8 GiB with TRL's default
LM-head tiles, 6.9 GiB with swiftall's smaller ones (train/rlhf/common.py), 3.6-3.9 GiB adding
--gradient_checkpointing (about 1.5x the seconds per step); the losses agree to 1e-6.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAKE_DATA = HERE.parent.parent / "shared" / "bench" / "make_data.py"
RUNNER = r"""
import json, sys
from swiftall import dpo_main
print("BENCH_RESULT " + json.dumps(dpo_main(json.loads(sys.argv[1]))))
"""


def bench_rows(rows: int, workdir: Path) -> Path:
    data = workdir / "data"
    subprocess.run([sys.executable, str(MAKE_DATA), str(data)], check=True, capture_output=True)
    path = workdir / f"dpo{rows}.jsonl"
    path.write_text("".join((data / "dpo.jsonl").read_text().splitlines(keepends=True)[:rows]))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--gradient_checkpointing", action="store_true", help="recompute activations in backward")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        dataset = bench_rows(args.rows, workdir)
        out = workdir / "run"
        config = {"model": "smollm2-135m-instruct", "dataset": [str(dataset)], "train_type": "lora",
                  "torch_dtype": args.dtype, "max_length": 512, "per_device_train_batch_size": args.batch,
                  "max_steps": args.steps, "learning_rate": 5e-5, "save_steps": 100000, "logging_steps": 1,
                  "report_to": ["none"], "output_dir": str(out), "gradient_checkpointing": args.gradient_checkpointing}
        started = time.time()
        proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(config)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"dpo failed:\n{proc.stderr[-3000:]}")
        summary = json.loads(proc.stdout.split("BENCH_RESULT ", 1)[1].splitlines()[0])
        log = [json.loads(line) for line in (out / "logging.jsonl").read_text().splitlines()]
    steps = [r for r in log if "loss" in r and "train_runtime" not in r]
    times = [b["elapsed_s"] - a["elapsed_s"] for a, b in zip(steps, steps[1:])]
    peak = max(r.get("memory_peak_rss_gib", 0) for r in log)
    tps = [r["tokens_per_second"] for r in steps[1:] if "tokens_per_second" in r]
    cuda = max((r.get("memory_cuda_peak_gib", 0) for r in log), default=0)
    result = {"rows": args.rows, "steps": summary["global_step"], "batch_pairs": args.batch, "max_length": 512,
              "dtype": args.dtype, "gradient_checkpointing": args.gradient_checkpointing,
              "rows_kept": summary["rows"]["train"],
              "seconds_per_step": round(sum(times) / max(len(times), 1), 3),
              "tokens_per_second": round(sum(tps) / len(tps), 1) if tps else None,
              "time_to_first_step_s": summary.get("time_to_first_step_s"), "peak_rss_gib": peak,
              "peak_cuda_gib": cuda or None, "wall_s": round(time.time() - started, 1),
              "load_average": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""`swiftall plan` against measured peaks: real short `swiftall sft`/`rlhf`/`infer` runs of the embedded model
(SmolLM2-135M-Instruct, float32 on this CPU), each in its own process, their peak RSS (the process's own VmHWM, the
whole run: imports, loading, training, saving; not ru_maxrss, which exec(2) starts at the launching process's peak) beside what the planner says for the same flags, and the error.

    python benchmarks/bench_plan.py                       # every setting (about 15 min on 2 idle cores)
    python benchmarks/bench_plan.py --only lora-b1-l128,infer-b16 --json out.json
    python benchmarks/bench_plan.py --baseline            # the CPU-side constants: import RSS, load RSS

Every row of the training data is longer than --max_length and cut to it (--truncation_strategy right), so each
batch holds batch x length tokens, all of them trained (the planner's case). The load average is printed: timings
of other processes on shared cores change the time, not the memory.
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

MODEL = "smollm2-135m-instruct"
WORDS = ("river stone cloud apple quiet garden yellow window morning bridge silver forest ladder candle "
         "harbor pepper violin marble thunder meadow").split()
# name -> (command, flags beyond the shared ones)
SETTINGS: dict[str, tuple[str, list[str]]] = {
    "full-b1-l128": ("sft", ["--train_type", "full", "--per_device_train_batch_size", "1", "--max_length", "128"]),
    "full-b4-l512": ("sft", ["--train_type", "full", "--per_device_train_batch_size", "4", "--max_length", "512"]),
    "full-b1-l512-gc": ("sft", ["--train_type", "full", "--per_device_train_batch_size", "1", "--max_length", "512",
                                "--gradient_checkpointing", "true"]),
    "lora-b1-l128": ("sft", ["--train_type", "lora", "--per_device_train_batch_size", "1", "--max_length", "128"]),
    "lora-b4-l128": ("sft", ["--train_type", "lora", "--per_device_train_batch_size", "4", "--max_length", "128"]),
    "lora-b1-l512": ("sft", ["--train_type", "lora", "--per_device_train_batch_size", "1", "--max_length", "512"]),
    "lora-b1-l512-gc": ("sft", ["--train_type", "lora", "--per_device_train_batch_size", "1", "--max_length", "512",
                                "--gradient_checkpointing", "true"]),
    "qlora-b1-l512": ("sft", ["--train_type", "lora", "--quant_method", "bnb", "--quant_bits", "4",
                              "--bnb_4bit_quant_type", "nf4", "--per_device_train_batch_size", "1",
                              "--max_length", "512"]),
    "dpo-lora-b1-l512": ("rlhf", ["--rlhf_type", "dpo", "--train_type", "lora", "--per_device_train_batch_size", "1",
                                  "--max_length", "512"]),
    "infer-b16": ("infer", ["--max_batch_size", "16", "--max_new_tokens", "128", "--max_length", "512"]),
}

RUNNER = r"""
import json, sys
command, flags = sys.argv[1], json.loads(sys.argv[2])
from swiftall.cli.main import main
from swiftall.train.callbacks import peak_rss_kib
code = main([command, *flags])
print("PEAK_RSS_KIB", peak_rss_kib(), "EXIT", code)
"""
BASELINE = r"""
import sys
import torch, transformers, peft, trl, datasets
import swiftall.pipelines.sft, swiftall.pipelines.rlhf, swiftall.pipelines.infer
from swiftall.train.callbacks import peak_rss_kib
imported = peak_rss_kib()
from swiftall.models import resolve_model, load_model
info = resolve_model("smollm2-135m-instruct")
model = load_model(info, torch_dtype="float32")
print("IMPORT_KIB", imported, "LOADED_KIB", peak_rss_kib())
"""


def long_text(seed: int, words: int) -> str:
    return " ".join(WORDS[(seed * 7 + i * 3 + i // 5) % len(WORDS)] for i in range(words))


def write_data(folder: Path, command: str) -> Path:
    """Training rows longer than any --max_length here (about 800 tokens), cut to it by the run; prompts of about
    480 tokens for infer (its --max_length 512 is the plan's prompt length)."""
    path = folder / f"{command}.jsonl"
    rows = []
    for i in range(16):
        question = f"Please write a long list of words, number {i}."
        if command == "rlhf":
            rows.append({"prompt": question, "chosen": long_text(i, 600), "rejected": long_text(i + 1, 600)})
        elif command == "infer":
            rows.append({"messages": [{"role": "user", "content": question + " " + long_text(i, 440)}]})
        else:
            rows.append({"messages": [{"role": "user", "content": question},
                                      {"role": "assistant", "content": long_text(i, 800)}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_flags(name: str, folder: Path, steps: int) -> tuple[str, list[str]]:
    """The whole command line of one setting (float32, a few steps, nothing saved but the final result)."""
    command, flags = SETTINGS[name]
    data = write_data(folder, command)
    shared = ["--model", MODEL, "--torch_dtype", "float32"]
    if command == "infer":
        return command, [*shared, *flags, "--val_dataset", str(data), "--result_path", str(folder / "answers.jsonl")]
    return command, [*shared, *flags, "--dataset", str(data), "--truncation_strategy", "right",
                     "--max_steps", str(steps), "--save_steps", "1000", "--logging_steps", "1", "--report_to", "none",
                     "--output_dir", str(folder / "run")]


def measure(name: str, steps: int = 2) -> dict:
    """Run one setting in its own process; its peak RSS in GiB and the seconds it took."""
    with tempfile.TemporaryDirectory() as tmp:
        command, flags = run_flags(name, Path(tmp), steps)
        started = time.time()
        proc = subprocess.run([sys.executable, "-c", RUNNER, command, json.dumps(flags)], capture_output=True,
                              text=True, timeout=3600)
        tail = proc.stdout.split("PEAK_RSS_KIB")
        if proc.returncode != 0 or len(tail) < 2 or not tail[-1].split()[2] == "0":
            raise RuntimeError(f"{name}: swiftall {command} failed:\n{proc.stderr[-3000:]}")
        peak_kib = int(tail[-1].split()[0])
    return {"setting": name, "command": command, "flags": flags_for_plan(name),
            "measured_gib": round(peak_kib / 2**20, 3), "seconds": round(time.time() - started, 1)}


def flags_for_plan(name: str) -> list[str]:
    command, flags = SETTINGS[name]
    return [command, "--model", MODEL, "--torch_dtype", "float32", "--device", "cpu", *flags]


def planned(name: str) -> dict:
    from swiftall.pipelines.plan import plan_report

    return plan_report(flags_for_plan(name))


def baseline() -> dict:
    proc = subprocess.run([sys.executable, "-c", BASELINE], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    parts = proc.stdout.split()
    imported, loaded = int(parts[parts.index("IMPORT_KIB") + 1]), int(parts[parts.index("LOADED_KIB") + 1])
    return {"import_gib": round(imported / 2**20, 3), "loaded_fp32_gib": round(loaded / 2**20, 3)}


def compare(names: list[str], steps: int) -> list[dict]:
    rows = []
    for name in names:
        row = measure(name, steps)
        plan = planned(name)
        row["plan_gib"] = round(plan["peak_gib"], 3)
        row["error_pct"] = round(100 * (row["plan_gib"] - row["measured_gib"]) / row["measured_gib"], 1)
        rows.append(row)
        print(f"{name:<18} plan {row['plan_gib']:6.2f} GiB  measured {row['measured_gib']:6.2f} GiB  "
              f"error {row['error_pct']:+6.1f}%  ({row['seconds']:.0f} s)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated settings (default: all): " + ", ".join(SETTINGS))
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--baseline", action="store_true", help="measure import and load RSS only")
    parser.add_argument("--measure_only", action="store_true", help="measured peaks without the planner")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    if args.baseline:
        print(json.dumps(baseline()))
        return
    names = [n for n in args.only.split(",") if n] or list(SETTINGS)
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        raise SystemExit(f"unknown setting {unknown[0]}; choose from {', '.join(SETTINGS)}")
    if args.measure_only:
        rows = []
        for name in names:
            rows.append(measure(name, args.steps))
            print(json.dumps(rows[-1]), flush=True)
    else:
        rows = compare(names, args.steps)
        worst = max(abs(r["error_pct"]) for r in rows)
        print(f"largest error {worst:.1f}% over {len(rows)} settings")
    print(f"load average at end: {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

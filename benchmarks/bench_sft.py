#!/usr/bin/env python3
"""SFT throughput on the embedded model: LoRA, fp32, --max_length 512, batch 4, the first 192 rows of sft.jsonl.

Runs each batching variant in its own process on the same rows and prints trained tokens per second
(assistant tokens, the ones with a loss), all tokens per second (pad excluded), time to first step, peak memory
(the run's own VmHWM), the ratio against the first variant, and how close the run came to the machine: its model
FLOPs (swiftall/train/flops.py: 4 x non-embedding parameters per token for LoRA's frozen weights, 6 x the
adapter's, 4 x the output head at trained positions) over its training-loop seconds, against the fp32 matmul rate
of exactly those GEMMs at its mean tokens per step, timed right after it in a process with its environment.
A variant may add overrides: `padding_free+gradient_checkpointing=true+OMP_WAIT_POLICY=ACTIVE` (lower-case keys
are sft flags, UPPER_CASE ones environment variables). Runs use the OpenMP wait policy the CLI chooses (passive waits
on a busy machine; utils/env.choose_openmp_waits), unless a variant sets one. With --ms_swift PATH/TO/swift it
also runs ms-swift's `swift sft` on the same rows and
settings, side by side, and prints our ratio against it.

    python benchmarks/bench_sft.py [--rows 192] [--steps N] [--variants plain,grouped,padding_free,packing]
                                   [--ms_swift /path/to/venv/bin/swift] [--model DIR] [--torch_dtype bfloat16]

On a CUDA machine the runs train on the GPU and the ceiling is the same GEMMs timed there in the run's dtype
(bf16: model-FLOPs utilisation against what the GPU's own matmuls reach at these shapes); the table adds the
GPU's peak allocated memory. benchmarks/gpu_check.sh runs it so.
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
VARIANTS = {
    "plain": {"group_by_length": False, "padding_free": False},
    "grouped": {"group_by_length": True, "padding_free": False},
    "padding_free": {"group_by_length": False, "padding_free": True},
    "packing": {"group_by_length": False, "packing": True},
}

RUNNER = r"""
import json, sys
from swiftall.utils.env import choose_openmp_waits
choose_openmp_waits()  # as the CLI does, before torch loads
from swiftall import sft_main
from swiftall.train.callbacks import peak_rss_kib
summary = sft_main(json.loads(sys.argv[1]))
summary["peak_rss_kib"] = peak_rss_kib()  # this process's own peak (VmHWM), not the parent's carried by exec
import torch
if torch.cuda.is_available():
    summary["cuda_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
print("BENCH_RESULT " + json.dumps(summary))
"""
CEILING = r"""
import json, sys
from swiftall.utils.env import choose_openmp_waits
choose_openmp_waits()
from swiftall.train.flops import DecoderShapes, matmul_ceiling
import torch
shapes, tokens, positions, dtype = json.loads(sys.argv[1])
device = "cuda" if torch.cuda.is_available() else "cpu"
print("BENCH_RESULT " + json.dumps(matmul_ceiling(DecoderShapes(**shapes), tokens, positions, full=False,
                                                  repeats=2 if device == "cpu" else 10,
                                                  dtype=getattr(torch, dtype), device=device)))
"""


def bench_rows(rows: int, workdir: Path) -> Path:
    data = workdir / "data"
    subprocess.run([sys.executable, str(MAKE_DATA), str(data)], check=True)
    path = workdir / f"sft{rows}.jsonl"
    path.write_text("".join((data / "sft.jsonl").read_text().splitlines(keepends=True)[:rows]))
    return path


def run_ours(name: str, dataset: Path, steps: int, workdir: Path, gc: str = "default",
             extra: dict | None = None, env: dict | None = None, model: str = "smollm2-135m-instruct",
             dtype: str = "float32") -> dict | None:
    config = {"model": model, "dataset": [str(dataset)], "train_type": "lora",
              "torch_dtype": dtype, "max_length": 512, "per_device_train_batch_size": 4,
              "num_train_epochs": 1, "max_steps": steps, "learning_rate": 1e-4, "save_steps": 100000,
              "logging_steps": 5, "report_to": ["none"], "output_dir": str(workdir), **VARIANTS[name],
              **(extra or {})}
    if gc != "default":
        config["gradient_checkpointing"] = gc == "true"
    started = time.time()
    out = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(config)], capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    if out.returncode != 0:  # said, and the other variants still run
        print(f"{name} failed:\n{out.stderr[-3000:]}", flush=True)
        return None
    summary = json.loads(out.stdout.split("BENCH_RESULT ", 1)[1].splitlines()[0])
    log = [json.loads(l) for l in (workdir / "logging.jsonl").read_text().splitlines()]
    peak = summary["peak_rss_kib"] / 2**20
    losses = [r["loss"] for r in log if "loss" in r and "train_runtime" not in r]
    loop = summary["train_loop_s"]
    return {"variant": name, "steps": summary["global_step"], "loop_s": loop, "wall_s": time.time() - started,
            "first_step_s": summary["time_to_first_step_s"], "trained_tok_s": summary["trained_tokens"] / loop,
            "tok_s": summary["tokens"] / loop, "peak_rss_gib": peak, "train_loss": summary["train_loss"],
            "s_per_step": loop / summary["global_step"], "tokens": summary["tokens"],
            "trained_tokens": summary["trained_tokens"], "losses": losses,
            "cuda_peak_gib": summary.get("cuda_peak_gib"), "dtype": config["torch_dtype"]}


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
    run = run_peer(cmd, env={"CUDA_VISIBLE_DEVICES": "", **openmp_env()})
    wall, text = run["wall_s"], run["text"]
    if run["returncode"] != 0:
        raise SystemExit(f"ms-swift failed ({' '.join(cmd)}):\n{text[-3000:]}")
    runtime = float(re.findall(r"'train_runtime': '?([\d.]+)", text)[-1])
    first = wall - runtime
    return {"variant": "ms-swift", "steps": steps, "loop_s": runtime, "wall_s": wall, "first_step_s": first,
            "s_per_step": runtime / steps, "peak_rss_gib": run["peak_gib"]}


def parse_variant(spec: str) -> tuple[str, dict, dict]:
    """`padding_free+OMP_NUM_THREADS=1+gradient_checkpointing=true`: a base variant, then overrides; UPPER_CASE keys
    are environment variables of the run, others sft flags (values read as JSON where they parse)."""
    base, *overrides = spec.split("+")
    if base not in VARIANTS:
        raise SystemExit(f"--variants: unknown variant {base!r} in {spec!r}; known: {', '.join(VARIANTS)}")
    config, env = {}, {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--variants: {item!r} in {spec!r} is not KEY=VALUE")
        if key.isupper():
            env[key] = value
            continue
        try:
            config[key] = json.loads(value)
        except ValueError:
            config[key] = value
    return base, config, env


def add_efficiency(result: dict, shapes, env: dict) -> None:
    """The run's model FLOPs (swiftall/train/flops.py), the matmul ceiling of the same GEMMs at its mean tokens
    per step measured right after the run in a process with the run's environment (same load, same thread
    settings), and the fraction of that ceiling the run reached."""
    from dataclasses import asdict

    from swiftall.train.flops import lora_params, train_flops

    steps = max(result["steps"], 1)
    flops = train_flops(shapes, result["tokens"], result["trained_tokens"], full=False,
                        adapter_params=lora_params(shapes, 8))
    job = [asdict(shapes), round(result["tokens"] / steps), round(result["trained_tokens"] / steps), result["dtype"]]
    out = subprocess.run([sys.executable, "-c", CEILING, json.dumps(job)], capture_output=True, text=True,
                         env={**os.environ, **env})
    if out.returncode != 0:
        raise SystemExit(f"the matmul ceiling failed:\n{out.stderr[-3000:]}")
    ceiling = json.loads(out.stdout.split("BENCH_RESULT ", 1)[1].splitlines()[0])
    result["tflop"] = flops["total"] / 1e12
    result["gflop_s"] = flops["total"] / result["loop_s"] / 1e9
    result["ceiling_gflop_s"] = ceiling["gflops_per_s"]
    result["fraction"] = result["gflop_s"] / ceiling["gflops_per_s"]
    result["load"] = os.getloadavg()[0]


def print_table(results: list[dict], rows: int) -> None:
    base = results[0]
    gpu = base.get("cuda_peak_gib") is not None
    where = _gpu_name() if gpu else f"{os.cpu_count()} CPUs"
    print(f"\nSFT benchmark: SmolLM2-135M-shaped, LoRA, {base['dtype']}, max_length 512, batch 4, {rows} rows of "
          f"sft.jsonl, {where}, load {os.getloadavg()[0]:.2f} (each run's load beside it)")
    print(f"{'variant':<40}{'steps':>6}{'s/step':>8}{'trained tok/s':>14}{'tok/s':>8}{'1st s':>7}{'peak GiB':>9}"
          f"{'loss':>7}{'TFLOP':>7}{'GFLOP/s':>8}{'ceiling':>8}{'of ceil':>8}{'load':>6}{'vs 1st':>8}")
    for r in results:
        print(f"{r['variant'][:39]:<40}{r['steps']:>6}{r['s_per_step']:>8.2f}{r['trained_tok_s']:>14.1f}"
              f"{r['tok_s']:>8.1f}{r['first_step_s']:>7.1f}{r['peak_rss_gib']:>9.2f}{r['train_loss']:>7.3f}"
              f"{r['tflop']:>7.2f}{r['gflop_s']:>8.1f}{r['ceiling_gflop_s']:>8.1f}{100 * r['fraction']:>7.1f}%"
              f"{r['load']:>6.2f}{r['trained_tok_s'] / base['trained_tok_s']:>7.2f}x"
              + (f"  GPU peak {r['cuda_peak_gib']:.2f} GiB" if gpu else ""), flush=True)
    print("GFLOP/s: the run's model FLOPs (4 x non-embedding params per token for the frozen weights, 6 x LoRA's, "
          "4 x the head at trained positions; swiftall/train/flops.py) over its training loop's seconds; ceiling: "
          f"the same GEMMs ({base['dtype']} torch.mm{' on the GPU' if gpu else ''}) at the run's mean tokens per "
          "step, timed right after it")


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0)


def model_shapes(model: str | None = None):
    from transformers import AutoConfig

    from swiftall.hub.embedded import embedded_model_dir
    from swiftall.train.flops import DecoderShapes

    return DecoderShapes.from_config(AutoConfig.from_pretrained(model or embedded_model_dir()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=192)
    parser.add_argument("--steps", type=int, default=-1, help="optimizer steps per variant (default: one epoch)")
    parser.add_argument("--variants", default="plain,grouped,padding_free,packing",
                        help="comma-separated; each may add +flag=value or +ENV_VAR=value overrides")
    parser.add_argument("--ms_swift", help="path to ms-swift's `swift` executable, to run it side by side")
    parser.add_argument("--gradient_checkpointing", choices=("default", "true", "false"), default="default",
                        help="default: each tool's own default (swiftall off, ms-swift on); true/false: both sides")
    parser.add_argument("--data", help="the rows to train on (default: the first --rows of make_data.py's sft.jsonl)")
    parser.add_argument("--results", help="also write the results (JSON) to this path")
    parser.add_argument("--model", help="a model folder of the same family (default: the embedded SmolLM2-135M)")
    parser.add_argument("--torch_dtype", default="float32", help="float32 (the CPU comparison) or bfloat16 (GPUs)")
    args = parser.parse_args()
    if args.ms_swift and args.model:
        raise SystemExit("--ms_swift compares on the embedded model: drop --model")
    workdir = Path(tempfile.mkdtemp(prefix="bench-sft-"))
    dataset = Path(args.data).resolve() if args.data else bench_rows(args.rows, workdir)
    shapes = model_shapes(args.model)
    results = []
    for i, spec in enumerate(args.variants.split(",")):
        base, config, env = parse_variant(spec)
        result = run_ours(base, dataset, args.steps, workdir / str(i), args.gradient_checkpointing, extra=config,
                          env=env, model=args.model or "smollm2-135m-instruct", dtype=args.torch_dtype)
        if result is None:
            continue
        result["variant"] = spec
        add_efficiency(result, shapes, env)
        results.append(result)
        print(f"{spec}: {result}", flush=True)
    if not results:
        raise SystemExit("every variant failed (above)")
    print_table(results, args.rows)
    if args.ms_swift:
        side_by_side(args, dataset, workdir, results)
    (workdir / "results.json").write_text(json.dumps(results, indent=2))
    if args.results:
        Path(args.results).write_text(json.dumps(results, indent=2))
    print(f"\nraw results: {workdir / 'results.json'}")


def side_by_side(args: argparse.Namespace, dataset: Path, workdir: Path, results: list[dict]) -> None:
    from swiftall.hub.embedded import embedded_model_dir

    steps = results[0]["steps"]
    gc = args.gradient_checkpointing
    ms = run_ms_swift(args.ms_swift, dataset, steps, str(embedded_model_dir()), workdir, gc)
    print(f"\nms-swift side by side ({steps} steps, same rows): {ms['s_per_step']:.2f} s/step, "
          f"{ms['first_step_s']:.0f} s before its first step, peak {ms['peak_rss_gib']:.2f} GiB (its largest process)")
    print("  ms-swift settings: " + MS_SWIFT_SETTINGS.format(gc={"default": "on (its default)"}.get(gc, gc)))
    print("  swiftall settings: the variants above (padding_free: per-sample SDPA attention, no flash-attn "
          f"needed); gradient checkpointing {({'default': 'off (its default)'}).get(gc, gc)}")
    for r in results:  # only variants that train on the same rows in the same order as ms-swift
        if r["steps"] == steps and r["variant"] in ("plain", "padding_free"):
            print(f"  swiftall {r['variant']:<13} {ms['s_per_step'] / r['s_per_step']:.2f}x ms-swift's throughput "
                  f"(same rows and steps); first step {r['first_step_s']:.0f} s vs {ms['first_step_s']:.0f} s; peak "
                  f"{r['peak_rss_gib']:.2f} GiB, {r['peak_rss_gib'] / ms['peak_rss_gib']:.0%} of ms-swift's")


if __name__ == "__main__":
    main()

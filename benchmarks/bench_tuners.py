#!/usr/bin/env python3
"""Tuners side by side on the embedded model: the same rows, batch and steps for each, each run in its own process.

Prints seconds per step (the training loop's time over its steps), trained tokens per second, the process's peak
RSS, and the final loss, with the ratios to plain LoRA's step time and peak memory. Targets: LoRA-family tuners
within 1.3x LoRA's step time (DoRA is known to be slower), QLoRA's peak at most 60% of LoRA fp32's.

    python benchmarks/bench_tuners.py [--rows 32] [--steps 8] [--tuners lora,dora,qlora,...]
    python benchmarks/bench_tuners.py --memory   # lora, qlora, lora_gc, qlora_gc: QLoRA's peak / LoRA's, same run
    python benchmarks/bench_tuners.py --memory --random_model 960,32,2560 --batch 1 --max_length 256
        # the same on a random model of SmolLM2-360M's shape (hidden, layers, intermediate; SmolLM2's tokenizer):
        # where the weights, not the activations, make most of the peak, as in the models QLoRA is used for
    python benchmarks/bench_tuners.py --memory --malloc_mmap_threshold 1048576
        # every run with glibc's mmap threshold fixed (MALLOC_MMAP_THRESHOLD_): blocks of 1 MiB and more are mapped
        # and returned when freed, where glibc's default raises the threshold and keeps freed blocks in its heap
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_sft import bench_rows  # the same rows as the SFT benchmark (this folder is on sys.path)

TUNERS = {
    "lora": {}, "dora": {"use_dora": True}, "rslora": {"use_rslora": True}, "pissa": {"init_weights": "pissa"},
    "lora_plus": {"lorap_lr_ratio": 16}, "qlora": {"quant_method": "bnb", "quant_bits": 4},
    # memory at the same settings with gradient checkpointing (QLoRA's usual recipe, peft's default for k-bit bases)
    "lora_gc": {"gradient_checkpointing": True},
    "qlora_gc": {"quant_method": "bnb", "quant_bits": 4, "gradient_checkpointing": True},
    "adalora": {}, "ia3": {}, "vera": {"lora_rank": 64}, "boft": {}, "oft": {"oft_block_size": 16}, "fourierft": {},
    "loha": {}, "lokr": {}, "prompt": {"packing": False}, "prefix": {"packing": False}, "p_tuning": {"packing": False},
    "adapter": {}, "reft": {}, "llamapro": {"llamapro_num_new_blocks": 2}, "lisa": {"lisa_activated_layers": 2},
    "galore": {"train_type": "full", "use_galore": True}, "full": {},
}
LORA_VARIANTS = {"dora", "rslora", "pissa", "lora_plus", "qlora", "lora_gc", "qlora_gc"}
MEMORY = "lora,qlora,lora_gc,qlora_gc"  # --memory: QLoRA's peak against LoRA fp32's, with and without checkpointing
# the child's own peak RSS (VmHWM): its ru_maxrss would start at the parent's peak, which exec(2) carries over
RUNNER = r"""
import json, sys
from swiftall import sft_main
summary = sft_main(json.loads(sys.argv[1]))
summary["peak_rss_kib"] = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
print("BENCH_RESULT " + json.dumps(summary))
"""


def random_model(shape: str, folder: Path) -> str:
    """A random llama of the given 'hidden,layers,intermediate' shape with SmolLM2's tokenizer, saved in folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from swiftall.hub.embedded import embedded_model_dir

    hidden, layers, intermediate = (int(x) for x in shape.split(","))
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=layers, num_attention_heads=hidden // 64, num_key_value_heads=hidden // 192,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    print(f"random llama {shape}: {sum(p.numel() for p in model.parameters()) / 1e6:.0f} M parameters", flush=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def run(name: str, dataset: Path, steps: int, workdir: Path, model: str = "smollm2-135m-instruct", batch: int = 4,
        max_length: int = 512, malloc_mmap_threshold: int = 0) -> dict:
    options = dict(TUNERS[name])
    train_type = options.pop("train_type", "lora" if name in LORA_VARIANTS else name)
    config = {"model": model, "dataset": [str(dataset)], "train_type": train_type,
              "torch_dtype": "float32", "max_length": max_length, "per_device_train_batch_size": batch,
              "max_steps": steps,
              "learning_rate": 1e-5 if train_type in ("full", "lisa", "llamapro") else 1e-4, "save_steps": 100000,
              "logging_steps": 1, "report_to": ["none"], "output_dir": str(workdir / name), **options}
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(malloc_mmap_threshold)} if malloc_mmap_threshold else None
    out = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(config)], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"name": name, "error": out.stderr.strip().splitlines()[-1][:160]}
    summary = json.loads(out.stdout.split("BENCH_RESULT ", 1)[1].splitlines()[0])
    losses = [r["loss"] for r in map(json.loads, (workdir / name / "logging.jsonl").read_text().splitlines())
              if "loss" in r]
    loop = summary["train_loop_s"] or summary["train_runtime_s"]
    return {"name": name, "s_per_step": loop / max(1, summary["global_step"]),
            "trained_tok_s": summary["trained_tokens"] / loop if loop else 0.0,
            "peak_gib": summary["peak_rss_kib"] / 2 ** 20, "final_loss": losses[-1] if losses else float("nan")}


def report(results: list[dict]) -> str:
    lora = next((r for r in results if r["name"] == "lora" and "error" not in r), None)
    lines = [f"{'tuner':<10} {'s/step':>7} {'x LoRA':>7} {'trained tok/s':>13} {'peak GiB':>9} {'x LoRA':>7} "
             f"{'final loss':>10}"]
    for r in results:
        if "error" in r:
            lines.append(f"{r['name']:<10} failed: {r['error']}")
            continue
        step_x = r["s_per_step"] / lora["s_per_step"] if lora else float("nan")
        peak_x = r["peak_gib"] / lora["peak_gib"] if lora else float("nan")
        lines.append(f"{r['name']:<10} {r['s_per_step']:>7.2f} {step_x:>7.2f} {r['trained_tok_s']:>13.1f} "
                     f"{r['peak_gib']:>9.2f} {peak_x:>7.2f} {r['final_loss']:>10.3f}")
    return "\n".join(lines)


def memory_ratios(results: list[dict]) -> str:
    """QLoRA's peak over LoRA fp32's, each pair at the same settings (target: at most 60%)."""
    peak = {r["name"]: r["peak_gib"] for r in results if "error" not in r}
    pairs = [("qlora", "lora", "no checkpointing"), ("qlora_gc", "lora_gc", "both checkpointed"),
             ("qlora_gc", "lora", "QLoRA checkpointed, LoRA not")]
    return "\n".join(f"QLoRA/LoRA peak, {label}: {peak[q] / peak[l]:.0%} ({peak[q]:.2f} / {peak[l]:.2f} GiB)"
                      for q, l, label in pairs if q in peak and l in peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--tuners", default=",".join(TUNERS))
    parser.add_argument("--memory", action="store_true", help=f"--tuners {MEMORY}, and the peak ratios")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--random_model", help="hidden,layers,intermediate: train a random llama of this shape")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--malloc_mmap_threshold", type=int, default=0,
                        help="bytes: glibc's MALLOC_MMAP_THRESHOLD_ for every run (0: glibc's default)")
    args = parser.parse_args()
    names = [n for n in (MEMORY if args.memory else args.tuners).split(",") if n]
    unknown = [n for n in names if n not in TUNERS]
    if unknown:
        raise SystemExit(f"--tuners: unknown {unknown}; choose from {', '.join(TUNERS)}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        dataset = bench_rows(args.rows, workdir)
        model = random_model(args.random_model, workdir / "model") if args.random_model else "smollm2-135m-instruct"
        results = []
        for name in names:
            results.append(run(name, dataset, args.steps, workdir, model, args.batch, args.max_length,
                               args.malloc_mmap_threshold))
            print(report(results).splitlines()[-1], flush=True)
    print()
    print(report(results))
    if args.memory:
        print(memory_ratios(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

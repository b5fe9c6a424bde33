"""QLoRA (bitsandbytes nf4, double quantization) on the embedded model, on this CPU: it learns the memorisation task,
and its peak RSS is compared with LoRA fp32's on the same run, each a `swiftall sft` command in its own process.

The peak is the process's own VmHWM (what `/usr/bin/time -v swiftall sft ...` reports from a shell): a child's
ru_maxrss starts at its parent's peak, which exec(2) carries over, so under a pytest process that had grown to 9 GiB
both runs used to read 9.27 GiB. At equal settings the peak is activations more than weights
on SmolLM2-135M (README, Tuners: `bench_tuners.py --memory`): the libraries alone (torch, transformers, peft) are
about 0.8 GiB, LoRA's fp32 weights 0.50 GiB and QLoRA's 0.16 GiB (the tied embeddings stay fp32), so even weightless
QLoRA would be about 85% of LoRA's peak; the quantized load no longer keeps the fp32 checkpoint mapped (0.5 GiB)."""
import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
RUN = """
import sys
from swiftall.cli.main import main
code = main(["sft", *sys.argv[1:]])
print("PEAK_RSS_KIB", open("/proc/self/status").read().split("VmHWM:")[1].split()[0], "EXIT", code)
"""


def run(tmp_path, name, data, extra):
    out = tmp_path / name
    done = subprocess.run([sys.executable, "-c", RUN, "--model", "smollm2-135m-instruct", "--dataset", str(data),
                           "--output_dir", str(out), "--max_steps", "8", "--per_device_train_batch_size", "4",
                           "--learning_rate", "3e-3", "--logging_steps", "1", "--save_steps", "100", "--report_to",
                           "none", "--warmup_ratio", "0", "--lr_scheduler_type", "constant", "--lora_rank", "8",
                           "--torch_dtype", "float32", *extra], capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0 and "EXIT 0" in done.stdout, done.stderr[-3000:]
    peak = int(done.stdout.split("PEAK_RSS_KIB")[-1].split()[0])
    losses = [r["loss"] for r in map(json.loads, (out / "logging.jsonl").read_text().splitlines()) if "loss" in r]
    return peak, losses, out


def test_qlora_nf4_learns_and_its_peak_rss_is_measured_against_lora_fp32(tmp_path):
    data = tmp_path / "codes.jsonl"
    words = "apple river stone cloud".split()
    data.write_text("".join(json.dumps({"query": f"Code for {w}?", "response": f"{w[::-1]}-{len(w)}7"}) + "\n"
                            for w in words))
    lora_peak, lora_losses, _ = run(tmp_path, "lora", data, [])
    q_peak, q_losses, out = run(tmp_path, "qlora", data, ["--quant_method", "bnb", "--quant_bits", "4",
                                                         "--bnb_4bit_quant_type", "nf4"])
    assert sum(q_losses[-2:]) / 2 <= 0.5 * q_losses[0], q_losses
    saved = json.loads((out / "args.json").read_text())
    assert saved["quant_method"] == "bnb" and (out / "adapter_config.json").is_file()
    report = (f"peak RSS: LoRA fp32 {lora_peak / 2**20:.2f} GiB, QLoRA nf4 {q_peak / 2**20:.2f} GiB "
              f"({q_peak / lora_peak:.0%}); final loss {lora_losses[-1]:.3f} vs {q_losses[-1]:.3f}")
    print(report)
    # both are real processes' own peaks: each at least the libraries' ~0.9 GiB, far below the 9 GiB of before
    assert 0.8 * 2**20 < lora_peak < 4 * 2**20 and 0.8 * 2**20 < q_peak < 4 * 2**20, report
    if q_peak >= lora_peak:
        pytest.xfail(f"{report}: not below LoRA's on a 135M model (see the module docstring)")

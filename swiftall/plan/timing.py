"""Time from FLOPs: training steps by the 2/4/6 x parameters x tokens rule plus attention, inference decode by the
bytes read per token. Throughputs are a device's dense peak times a utilisation, or given (--tflops)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .setting import Setting
from .spec import ModelSpec

# dense bf16 peak TFLOPS and memory bandwidth (GB/s) from the vendors' data sheets; matched by substring of the name
GPUS = {"h200": (989, 4800), "h100": (989, 3350), "a100": (312, 2000), "l40": (181, 864), "l4": (121, 300),
        "a10": (125, 600), "4090": (165, 1008), "3090": (71, 936), "v100": (125, 900), "t4": (65, 320)}
UTILISATION = 0.35          # a typical fraction of peak reached by training steps (MFU)
CPU_TFLOPS = 0.05           # effective float32 throughput of a small CPU; --tflops or --calibrate sets yours
CPU_BANDWIDTH_GBS = 10.0


@dataclass(frozen=True)
class TimeEstimate:
    flops_per_step: float
    tflops: float
    seconds_per_step: float
    steps_per_epoch: int
    seconds_per_epoch: float
    basis: str


def device_speed(device: str, name: str = "", tflops: Optional[float] = None) -> tuple[float, float, str]:
    """(effective TFLOPS, bandwidth GB/s, where the numbers come from)."""
    if tflops:
        return tflops, CPU_BANDWIDTH_GBS if device == "cpu" else 1000.0, "given --tflops"
    if device == "cpu":
        return CPU_TFLOPS, CPU_BANDWIDTH_GBS, "a default for CPUs (measure yours: --calibrate)"
    for key, (peak, bandwidth) in GPUS.items():
        if key in name.lower():
            return peak * UTILISATION, bandwidth, f"{key.upper()} peak {peak} TFLOPS x {UTILISATION:.0%}"
    return 100 * UTILISATION, 1000.0, "an unknown GPU taken as 100 TFLOPS peak"


def step_flops(spec: ModelSpec, s: Setting) -> float:
    """FLOPs of one training step on one device (forward 2N per token; backward 4N full, 2N for frozen weights)."""
    tokens = s.sequences * s.length
    compute_params = spec.layers * spec.layer_linear_params + spec.vocab * spec.hidden
    passes = 6 if s.train_type == "full" else 4
    if s.checkpointing:
        passes += 2
    attention = 4 * spec.layers * s.length * spec.q_dim * (passes / 2)  # scores and weighted sum, causal half
    if s.task == "rlhf" and s.rlhf_type in ("dpo", "kto", "grpo", "ppo"):
        passes += 2  # the reference model's forward
    return tokens * (passes * compute_params + attention / 2)


def estimate_time(spec: ModelSpec, s: Setting, device: str, name: str = "", tflops: Optional[float] = None,
                  rows: int = 1000) -> TimeEstimate:
    speed, bandwidth, basis = device_speed(device, name, tflops)
    if s.training:
        flops = step_flops(spec, s)
        seconds = flops / (speed * 1e12)
        steps = max(1, -(-rows // (s.batch * max(1, s.nproc))))
        return TimeEstimate(flops, speed, seconds, steps, seconds * steps, basis)
    weights = spec.total_params * (s.quant_bits / 8 if s.quant_bits else s.dtype_bytes)
    decode = s.new_tokens * weights / (bandwidth * 1e9)
    prefill = 2 * spec.lm_params * s.batch * s.length / (speed * 1e12)
    return TimeEstimate(2 * spec.lm_params * s.batch * (s.length + s.new_tokens), speed, prefill + decode, 1,
                        prefill + decode, basis + f"; decode reads the weights at {bandwidth:g} GB/s per token")

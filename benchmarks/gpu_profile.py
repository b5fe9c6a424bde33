#!/usr/bin/env python3
"""Where one LoRA SFT step's time goes: steps 4-9 of a short run under torch.profiler (CPU and, on a GPU, CUDA
activity) and cProfile, after 3 unprofiled steps. Prints seconds per step unprofiled and profiled, the operators
with the most self CPU time and device time, and the Python functions with the most own time.

    python benchmarks/gpu_profile.py MODEL_DIR ROWS.jsonl [sft flags as JSON, e.g. '{"padding_free": true}']

benchmarks/gpu_check.sh runs it on a GPU machine (ONLY=profile).
"""
from __future__ import annotations

import cProfile
import io
import json
import pstats
import sys
import tempfile
import time

from swiftall.utils.env import choose_openmp_waits

choose_openmp_waits()

import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from swiftall import sft_main  # noqa: E402

WARM, PROFILED = 3, 6


class Profile(TrainerCallback):
    def __init__(self):
        self.times: list[float] = []
        self.start = None
        self.prof = None
        self.py = cProfile.Profile()

    def on_step_begin(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.start = time.perf_counter()
        if state.global_step == WARM:
            activities = [torch.profiler.ProfilerActivity.CPU]
            if torch.cuda.is_available():
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            self.prof = torch.profiler.profile(activities=activities)
            self.prof.__enter__()
            self.py.enable()

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self.start)
        if state.global_step == WARM + PROFILED:
            self.py.disable()
            self.prof.__exit__(None, None, None)


def main() -> None:
    model, rows = sys.argv[1], sys.argv[2]
    extra = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    callback = Profile()
    import swiftall.train.trainer as trainer_module

    original = trainer_module.SwiftTrainer.__init__

    def init(self, *args, **kwargs):  # add the profiling callback to the trainer sft_main builds
        original(self, *args, **kwargs)
        self.add_callback(callback)

    trainer_module.SwiftTrainer.__init__ = init
    config = {"model": model, "dataset": [rows], "train_type": "lora", "torch_dtype": "bfloat16"
              if torch.cuda.is_available() else "float32", "max_length": 512, "per_device_train_batch_size": 4,
              "max_steps": WARM + PROFILED + 1, "logging_steps": 100, "save_steps": 100000, "report_to": ["none"],
              "output_dir": tempfile.mkdtemp(prefix="profile-"), **extra}
    sft_main(config)
    t = callback.times
    print(f"\nPROFILE {json.dumps(extra)}: steps 1-{WARM}: {[round(x, 3) for x in t[:WARM]]} s; profiled steps: "
          f"{sum(t[WARM:WARM + PROFILED]) / PROFILED:.3f} s/step; after: {[round(x, 3) for x in t[WARM + PROFILED:]]}")
    if callback.prof is None:
        return
    averages = callback.prof.key_averages()
    print(averages.table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=60))
    if torch.cuda.is_available():
        print(averages.table(sort_by="self_device_time_total", row_limit=10, max_name_column_width=60))
    out = io.StringIO()
    pstats.Stats(callback.py, stream=out).sort_stats("tottime").print_stats(22)
    print("\n".join(out.getvalue().splitlines()[:45]))
    out = io.StringIO()
    pstats.Stats(callback.py, stream=out).sort_stats("tottime").print_callers("_named_members|synchronize|item|tolist")
    print("\n".join(line[:220] for line in out.getvalue().splitlines()[:40]))


if __name__ == "__main__":
    main()

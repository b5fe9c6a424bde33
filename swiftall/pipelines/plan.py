"""swiftall plan: memory by component, the peak, and the time of a run, from the model's config only."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..config.plan import PLANNED, PlanConfig
from ..plan import (GIB, estimate_time, fits, machine_for, make_plan, model_spec, nearest_fit, setting_from,
                    smallest_need)
from ..plan.fit import HEADROOM
from ..utils.plugins import load_plugins


def plan_config(config: Any) -> PlanConfig:
    """argv may start with the planned command: `swiftall plan infer --model M` is `--plan_task infer`."""
    if isinstance(config, (list, tuple)) and config and config[0] in PLANNED:
        config = ["--plan_task", config[0], *config[1:]]
    return PlanConfig.from_any(config)


def plan_report(config: Any) -> dict[str, Any]:
    """The plan as data: components, peak, budget, whether it fits, the nearest setting that does, the time."""
    cfg = plan_config(config)
    load_plugins(cfg.plugin)
    spec = model_spec(cfg.model, cfg.model_type, hub=cfg.hub, revision=cfg.revision)
    machine = machine_for(cfg.device, cfg.memory_gb)
    setting = setting_from(cfg, machine)
    plan = make_plan(spec, setting)
    name = machine.accelerator.name if machine.accelerator else "cpu"
    tflops = calibrated_tflops(cfg, spec, setting) if cfg.calibrate else cfg.tflops
    time = estimate_time(spec, setting, machine.device, name, tflops, rows=cfg.num_rows)
    if cfg.calibrate:
        time = dataclasses.replace(time, basis="calibrated: 3 real steps of this setting here")
    report = {
        "model": spec.name, "source": spec.source, "params_b": round(spec.total_params / 1e9, 4),
        "setting": setting.describe(), "device": machine.device, "budget_gib": round(machine.budget_gib, 2),
        "components": [{"name": c.name, "gib": round(c.bytes / GIB, 3), "note": c.note, "phase": c.phase}
                       for c in plan.components],
        "peak_gib": plan.peak_gib, "trainable_params": plan.trainable_params,
        "fits": fits(plan, machine.budget_gib),
        "time": {"seconds_per_step": time.seconds_per_step, "steps_per_epoch": time.steps_per_epoch,
                 "seconds_per_epoch": time.seconds_per_epoch, "tflops": time.tflops, "basis": time.basis},
    }
    if not report["fits"]:
        choice = nearest_fit(spec, setting, machine.budget_gib)
        report["nearest"] = {"changes": list(choice.reasons), "peak_gib": choice.plan.peak_gib,
                             "setting": choice.setting.describe()} if choice else None
        report["smallest_gib"] = smallest_need(spec, setting).peak_gib
    return report


def plan_main(config: Any = None) -> dict[str, Any]:
    report = plan_report(config)
    print("\n".join(report_lines(report)))
    return report


def report_lines(r: dict[str, Any]) -> list[str]:
    lines = [f"{r['model']} ({r['params_b']:g}B parameters; {r['source'] or 'config.json'})", r["setting"], ""]
    width = max(len(c["name"]) for c in r["components"])
    lines += [f"  {c['name']:<{width}}  {c['gib']:8.3f} GiB  " + (f"[{c['phase']}] " if c["phase"] != "held" else "")
              + c["note"] for c in r["components"]]
    lines += [f"  {'peak':<{width}}  {r['peak_gib']:8.3f} GiB  (all that is held, plus the larger of the "
              "[backward] and [optimizer step] parts)" if len({c["phase"] for c in r["components"]}) > 1 else
              f"  {'peak':<{width}}  {r['peak_gib']:8.3f} GiB", ""]
    verdict = "fits" if r["fits"] else "does NOT fit"
    lines.append(f"{verdict} in {r['budget_gib']:.1f} GiB free on {r['device']} (a plan fits at up to "
                 f"{HEADROOM:.0%} of it)")
    t = r["time"]
    if "steps_per_epoch" in t and t["steps_per_epoch"] > 1:
        lines.append(f"time: {t['seconds_per_step']:.2f} s per step, {t['seconds_per_epoch'] / 60:.1f} min per epoch "
                     f"of {t['steps_per_epoch']} steps ({t['tflops']:.3g} TFLOPS: {t['basis']})")
    else:
        lines.append(f"time: {t['seconds_per_step']:.2f} s ({t['tflops']:.3g} TFLOPS: {t['basis']})")
    if not r["fits"]:
        near = r.get("nearest")
        if near:
            lines.append(f"nearest setting that fits: {', '.join(near['changes'])} -> {near['peak_gib']:.2f} GiB "
                         f"({near['setting']})")
        else:
            lines.append(f"nothing near fits; the smallest need of this model is {r['smallest_gib']:.2f} GiB "
                         "(LoRA or QLoRA, batch 1, 256 tokens, checkpointing)")
    return lines


CALIBRATE_ROWS = 8


def calibrated_tflops(cfg: PlanConfig, spec: Any, setting: Any) -> float:
    """--calibrate: 3 real sft steps of this setting on this machine (bundled-style rows cut to --max_length); the
    effective TFLOPS is the planner's FLOPs of a step over the measured seconds of steps 2-3."""
    from ..plan.timing import step_flops

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "rows.jsonl"
        text = " ".join(f"word{i % 97}" for i in range(setting.length * 2))
        data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": "Repeat."},
                                                         {"role": "assistant", "content": text}]}) + "\n"
                                for _ in range(CALIBRATE_ROWS)))
        flags = ["--model", cfg.model or cfg.model_type, "--dataset", str(data), "--max_steps", "3",
                 "--logging_steps", "1", "--save_steps", "1000", "--report_to", "none", "--truncation_strategy",
                 "right", "--output_dir", str(Path(tmp) / "run"), "--no_plan_check", "true", *setting.flags()]
        done = subprocess.run([sys.executable, "-m", "swiftall", "sft", *flags], capture_output=True, text=True)
        if done.returncode != 0:
            from ..utils.errors import ConfigError

            raise ConfigError(f"--calibrate: the 3 training steps failed: {done.stderr.strip()[-800:]}")
        log = [json.loads(x) for x in (Path(tmp) / "run" / "logging.jsonl").read_text().splitlines()]
    steps = [r["elapsed_s"] for r in log if "loss" in r and "elapsed_s" in r]
    seconds = (steps[-1] - steps[0]) / max(1, len(steps) - 1)
    return step_flops(spec, setting) / max(seconds, 1e-6) / 1e12


def check_plan_before_loading(cfg: Any, model_path: Any, logger: Any) -> None:
    """sft's check: when the plan of this run exceeds the free memory, warn (with the nearest setting that fits)
    before anything loads; --no_plan_check skips it. A model the planner cannot read is not a reason to stop."""
    if getattr(cfg, "no_plan_check", False):
        return
    from ..utils.errors import SwiftallError

    try:
        spec = model_spec(str(model_path))
        machine = machine_for("auto")
        setting = setting_from(cfg, machine, task=cfg.command)
        plan = make_plan(spec, setting)
    except SwiftallError:
        return
    if fits(plan, machine.budget_gib):
        return
    top = sorted(plan.components, key=lambda c: -c.bytes)[:3]
    near = nearest_fit(spec, setting, machine.budget_gib)
    advice = (f"the nearest setting that fits: {', '.join(near.reasons)} ({near.plan.peak_gib:.1f} GiB)" if near
              else f"nothing near fits; this model needs at least {smallest_need(spec, setting).peak_gib:.1f} GiB")
    logger.warning(f"memory plan: this run needs about {plan.peak_gib:.1f} GiB ("
                   + ", ".join(f"{c.name} {c.bytes / GIB:.1f}" for c in top) + f"), more than {HEADROOM:.0%} of the "
                   f"{machine.budget_gib:.1f} GiB free on {machine.device}; {advice}. swiftall plan {cfg.command} with "
                   "the same flags shows the table; --no_plan_check true skips this check")

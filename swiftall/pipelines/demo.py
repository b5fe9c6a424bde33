"""`swiftall demo`: the whole journey on the embedded model, in a few minutes on a laptop CPU.

LoRA fine-tunes SmolLM2-135M-Instruct on the bundled self-cognition and swiftall-demo sets, asks the
same held-out questions before and after and scores them with `swiftall eval` (score, 95% interval, report folders;
demo_eval.py), merges the adapter, and prints where everything went.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

from ..config import SftConfig
from ..config.argv import print_help
from ..utils.errors import ConfigError
from ..utils.log import get_logger
from .demo_eval import answers, held_out_task, place, score_held_out, score_lines, staging_dir
from .export import export_main
from .infer import InferEngine
from .sft import sft_main

logger = get_logger(__name__)
MODEL = "smollm2-135m-instruct"
NAME, AUTHOR = "Swifty", "the swiftall team"
# Printed before and after; these and the other held-out questions (demo_eval.py) are not in the training data.
QUESTIONS = ["What's your name?", "Could you introduce yourself briefly?", "Which team created you?",
             "How can I merge my LoRA adapter using swiftall?"]


class DemoConfig(SftConfig):
    """The end-to-end demo: LoRA fine-tunes the embedded SmolLM2-135M-Instruct on the bundled self-cognition and
    swiftall-demo sets, asks held-out questions before and after, and merges the adapter. Every sft flag works;
    these are the demo's own defaults."""

    command = "demo"
    defaults = {"model": MODEL, "dataset": ["self-cognition", "swiftall-demo"], "model_name": [NAME],
                "model_author": [AUTHOR], "num_train_epochs": 6, "per_device_train_batch_size": 4,
                "learning_rate": 4e-4, "lora_rank": 16, "lora_alpha": 32, "save_steps": 30, "logging_steps": 5,
                "report_to": ["tensorboard"]}


def demo_config(argv: Any = None) -> Optional[DemoConfig]:
    """The demo's config from argv (flags as for sft, on the demo's defaults); None after printing --help."""
    argv = [] if argv is None else argv
    if isinstance(argv, list) and any(a in ("-h", "--help") for a in argv):
        print_help(DemoConfig)
        return None
    if isinstance(argv, list) and argv and not str(argv[0]).startswith("-"):
        raise ConfigError(f"swiftall demo: unexpected value {argv[0]!r}; give flags, e.g. --output_dir DIR "
                          "(see swiftall demo --help)")
    cfg = DemoConfig.from_any(argv)
    if not cfg.output_dir:
        cfg.output_dir = f"output/demo-{time.strftime('%Y%m%d-%H%M%S')}"
    return cfg


def demo_main(argv: Any = None) -> dict[str, Any]:
    started = time.time()
    cfg = demo_config(argv)
    if cfg is None:
        return {}
    out = Path(cfg.output_dir)
    task = held_out_task(cfg.model_name[0] if cfg.model_name else NAME, cfg.model_author[0] if cfg.model_author
                         else AUTHOR)
    before = score_held_out(InferEngine(cfg.model, model_type=cfg.model_type), task, staging_dir(), "before")
    summary = sft_main(cfg)
    before = place(before, out / "eval" / "before")  # the run folder exists now (it had to be empty for sft)
    after = score_held_out(InferEngine(adapters=[str(out)]), task, out / "eval" / "after", "after")
    merged = export_main({"adapters": [str(out)], "merge_lora": True})
    print("\n=== before and after fine-tuning (greedy, questions not in the training data) ===")
    for q, b, a in zip(QUESTIONS, answers(before, QUESTIONS), answers(after, QUESTIONS)):
        print(f"\nQ: {q}\n  before: {b}\n  after:  {a}")
    print(f"\n=== {len(task.items)} held-out questions scored by swiftall eval (right = states the expected fact) ===")
    print("\n".join(score_lines(before, after)))
    print("\n=== where everything went ===")
    print(f"  run folder (LoRA adapter, args.json, logging.jsonl): {out}")
    print(f"  checkpoints: {', '.join(sorted(p.name for p in out.glob('checkpoint-*')))}")
    print(f"  plots: {', '.join(summary['plots'])}")
    print(f"  TensorBoard events: {out / 'runs'}")
    print(f"  merged standalone model: {merged}")
    print(f"  chat with it: swiftall infer --adapters {out}   (or --model {merged})")
    print(f"  total time: {time.time() - started:.0f} s")
    scores = {k: r["datasets"]["held_out"]["metrics"] for k, r in (("before", before), ("after", after))}
    return {"before": answers(before, QUESTIONS), "after": answers(after, QUESTIONS),
            "scores": scores, "eval_dirs": [before["run_dir"], after["run_dir"]], "output_dir": str(out),
            "merged": str(merged), **summary}

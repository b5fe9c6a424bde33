"""The demo's held-out questions, scored by `swiftall eval`'s native evaluator before and after fine-tuning.

None of the questions is in the training data (tests check it). An answer is right when it states the expected
fact (metric `contains`: the model's name, its author, or the swiftall command) -- a right/wrong score with a
Wilson 95% interval; ROUGE-L is reported beside it. Each run's report and predictions land in
<output_dir>/eval/before and <output_dir>/eval/after, which `swiftall eval diff` compares."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..eval.evaluate import evaluate
from ..eval.items import EvalItem
from ..eval.loading import EvalTask
from ..eval.report import write_report
from ..eval.runner import RunSettings
from ..infer import RequestConfig

TASK = "held_out"
NAME_QUESTIONS = ("What's your name?", "Could you introduce yourself briefly?", "Can you tell me who you are?",
                  "How should I address you?")
AUTHOR_QUESTIONS = ("Which team created you?", "Who is your creator?", "Which organization trained you?",
                    "Who are the people behind you?")
SWIFTALL_QUESTIONS = (("How can I merge my LoRA adapter using swiftall?", "--merge_lora true"),
                      ("What command do I use to fine-tune with swiftall?", "swiftall sft"),
                      ("How do I run my fine-tuned model in swiftall?", "swiftall infer"),
                      ("Which small model comes with swiftall?", "SmolLM2"))


def held_out(name: str, author: str) -> list[tuple[str, str]]:
    """(question, the fact a right answer states)."""
    return ([(q, name) for q in NAME_QUESTIONS] + [(q, author) for q in AUTHOR_QUESTIONS]
            + list(SWIFTALL_QUESTIONS))


def held_out_task(name: str, author: str) -> EvalTask:
    items = [EvalItem(str(i), [{"role": "user", "content": q}], [fact])
             for i, (q, fact) in enumerate(held_out(name, author))]
    return EvalTask(TASK, "qa", items, {"kind": "demo", "questions": len(items)},
                    options={"metrics": ["contains", "rougeL"]})


def score_held_out(engine: Any, task: EvalTask, folder: Path, label: str, max_new_tokens: int = 48
                   ) -> dict[str, Any]:
    """Scores the engine's answers; the report goes to `folder` (written elsewhere first when `folder`'s parent
    does not exist yet -- before training, the run folder must stay empty -- and moved there by `place`)."""
    settings = RunSettings(RequestConfig(max_new_tokens=max_new_tokens, temperature=0), progress=False)
    config = {"demo": label, "generation": {"max_new_tokens": max_new_tokens, "temperature": 0}}
    with engine:
        return evaluate(engine, [task], settings, folder, config, requested_mode="generate", max_tokens_given=True,
                        print_table=False)


def staging_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="swiftall-demo-eval-"))


def place(report: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Moves a report's run folder to `folder` and rewrites report.json/report.md with its new place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(report["run_dir"], folder)
    report = {**report, "run_dir": str(folder)}
    write_report(folder, report)
    return report


def answers(report: dict[str, Any], questions: list[str]) -> list[str]:
    """The raw answers to these questions, on one line each."""
    from ..eval.predictions import read_predictions

    records = read_predictions(Path(report["run_dir"]) / "predictions" / f"{TASK}.jsonl")
    by_question = {r["prompt"][-1]["content"]: str(r["raw"]).strip().replace("\n", " ") for r in records}
    return [by_question[q] for q in questions]


def score_lines(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    from ..eval.diff import eval_diff

    lines = []
    for metric in ("contains", "rougeL"):
        a, b = (r["datasets"][TASK]["metrics"][metric] for r in (before, after))
        lines.append(f"  {metric:<9} before {a['value']:.3f} [{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}]   "
                     f"after {b['value']:.3f} [{b['ci95'][0]:.3f}, {b['ci95'][1]:.3f}]   (n={b['n']}, 95% CI)")
    change = eval_diff(before["run_dir"], after["run_dir"])["datasets"][TASK]
    lines.append(f"  items that turned right: {change['better']}, turned wrong: {change['worse']}; change "
                 f"{change['change']['value']:+.3f} [{change['change']['ci95'][0]:+.3f}, "
                 f"{change['change']['ci95'][1]:+.3f}]")
    lines.append(f"  reports: {before['run_dir']}  {after['run_dir']}")
    lines.append(f"  compare item by item: swiftall eval diff {before['run_dir']} {after['run_dir']}")
    return lines

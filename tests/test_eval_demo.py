"""The demo's held-out questions: none is in the training data, and scoring them before and after gives the
scores with intervals, report folders in the run folder and the item-by-item change (scripted engines stand in
for the model here; `make demo` runs the real one)."""
import json
from pathlib import Path

import pytest

from swiftall.infer.engine import Engine, InferResponse
from swiftall.pipelines import demo_eval
from swiftall.pipelines.demo import AUTHOR, NAME, QUESTIONS

BUILTIN = Path(__file__).resolve().parents[1] / "swiftall" / "data" / "builtin"


class Answers(Engine):
    def __init__(self, answer):
        self.answer = answer

    def infer(self, requests, config=None):
        return [InferResponse(self.answer(r.messages[-1]["content"]), "stop", 3, 3) for r in requests]

    def stream(self, request, config=None):
        yield self.infer([request], config)[0].text


def trained_questions():
    seen = set()
    for name in ("self_cognition.jsonl", "demo.jsonl"):
        for line in (BUILTIN / name).read_text().splitlines():
            row = json.loads(line)
            seen.add((row.get("query") or row["messages"][0]["content"]).strip().lower())
    return seen


def test_held_out_questions_are_not_trained_on_and_include_the_printed_ones():
    questions = [q for q, _ in demo_eval.held_out(NAME, AUTHOR)]
    assert not {q.lower() for q in questions} & trained_questions()
    assert set(QUESTIONS) <= set(questions) and len(set(questions)) == len(questions) >= 12


def test_before_and_after_scores_reports_and_change(tmp_path):
    task = demo_eval.held_out_task(NAME, AUTHOR)
    facts = dict(demo_eval.held_out(NAME, AUTHOR))
    before = demo_eval.score_held_out(Answers(lambda q: "I am an AI assistant."), task, demo_eval.staging_dir(),
                                      "before")
    run = tmp_path / "run"
    before = demo_eval.place(before, run / "eval" / "before")
    scripted = Answers(lambda q: f"Sure: {facts[q]}." if "swiftall" not in q else "No idea")
    after = demo_eval.score_held_out(scripted, task, run / "eval" / "after", "after")
    contains = [r["datasets"]["held_out"]["metrics"]["contains"] for r in (before, after)]
    assert contains[0]["value"] == 0.0 and contains[1]["n"] == 12
    assert contains[1]["value"] == pytest.approx(8 / 12, abs=1e-6)
    assert contains[1]["ci95"][0] > contains[0]["ci95"][1]
    saved = json.loads((run / "eval" / "before" / "report.json").read_text())
    assert saved["run_dir"] == str(run / "eval" / "before") and (run / "eval" / "before" / "report.md").is_file()
    assert demo_eval.answers(after, QUESTIONS) == [f"Sure: {NAME}.", f"Sure: {NAME}.", f"Sure: {AUTHOR}.", "No idea"]
    text = "\n".join(demo_eval.score_lines(before, after))
    assert "contains  before 0.000" in text and "after 0.667" in text
    assert "items that turned right: 8, turned wrong: 0" in text and str(run / "eval" / "after") in text

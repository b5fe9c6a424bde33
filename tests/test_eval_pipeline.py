"""The evaluation run: scoring through an Engine, predictions item by item, report files, resume after a crash,
diff of two runs, and bad input (unreachable --eval_url, a model that answers nothing). Scripted engines stand in
for a model; one test runs eval_main on a tiny random model end to end."""
import json
import threading
import types
from pathlib import Path

import pytest

from swiftall.eval.diff import eval_diff, format_diff
from swiftall.eval.evaluate import evaluate
from swiftall.eval.loading import load_task
from swiftall.eval.report import new_run_dir
from swiftall.eval.runner import RunSettings
from swiftall.infer.engine import Engine, InferResponse, RequestConfig
from swiftall.pipelines.eval import eval_main
from swiftall.utils.errors import ConfigError

CAPITALS = {"France": "Paris", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo", "Egypt": "Cairo",
            "Peru": "Lima", "Kenya": "Nairobi", "Chile": "Santiago"}
CFG = types.SimpleNamespace(hub="huggingface", eval_num_fewshot=0, columns={})


class ScriptedEngine(Engine):
    """Answers each question with answer(question); counts calls; fails after `crash_after` answers."""

    def __init__(self, answer, crash_after=None):
        self.answer, self.crash_after, self.calls, self.lock = answer, crash_after, 0, threading.Lock()

    def infer(self, requests, config=None):
        out = []
        for request in requests:
            with self.lock:
                self.calls += 1
                if self.crash_after is not None and self.calls > self.crash_after:
                    raise RuntimeError("simulated crash")
            text = self.answer(request.messages[-1]["content"])
            out.append(InferResponse(text, "stop", 5, len(text.split())))
        return out

    def stream(self, request, config=None):
        yield self.infer([request], config)[0].text


@pytest.fixture
def capitals(write_jsonl):
    return write_jsonl([{"query": f"Capital of {c}?", "response": city, "id": c} for c, city in CAPITALS.items()],
                       "capitals.jsonl")


def run(engine, path, out, resume=False, folder=None):
    task = load_task(str(path), CFG, None, None, 0, {})
    folder = folder or new_run_dir(out)
    settings = RunSettings(RequestConfig(max_new_tokens=8, temperature=0), progress=False)
    return evaluate(engine, [task], settings, folder, {"model": "scripted"}, resume, print_table=False), folder


def country(question):
    return question.split("of ")[1].rstrip("?")


def test_scores_think_stripped_predictions_and_report_files(capitals, tmp_path):
    right = {"France", "Italy", "Spain", "Japan"}
    engine = ScriptedEngine(lambda q: f"<think>hmm, {q}</think>{CAPITALS[country(q)]}" if country(q) in right
                            else "I don't know")
    report, folder = run(engine, capitals, tmp_path / "out")
    result = report["datasets"]["capitals"]
    em = result["metrics"]["exact_match"]
    assert em["value"] == 0.5 and em["n"] == 8 and em["ci_method"] == "wilson" and em["ci95"][0] < 0.5 < em["ci95"][1]
    lines = [json.loads(x) for x in (folder / "predictions" / "capitals.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == list(CAPITALS)
    france = lines[0]
    assert france["raw"].startswith("<think>") and france["extracted"] == "Paris" and france["score"]["exact_match"] == 1
    assert france["prompt"] == [{"role": "user", "content": "Capital of France?"}] and france["references"] == ["Paris"]
    saved = json.loads((folder / "report.json").read_text())
    assert saved["datasets"]["capitals"]["data_hash"] and "transformers" in saved["packages"]
    assert "| capitals | exact_match * | 0.5000 |" in (folder / "report.md").read_text()


def test_crash_keeps_predictions_and_resume_continues(capitals, tmp_path):
    crashing = ScriptedEngine(lambda q: CAPITALS[country(q)], crash_after=3)
    folder = new_run_dir(tmp_path / "out")
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(crashing, capitals, None, folder=folder)
    kept = (folder / "predictions" / "capitals.jsonl").read_text().splitlines()
    assert len(kept) == 3
    healthy = ScriptedEngine(lambda q: CAPITALS[country(q)])
    report, _ = run(healthy, capitals, None, resume=True, folder=folder)
    assert healthy.calls == 5                                  # only the unanswered items were asked
    assert report["datasets"]["capitals"]["metrics"]["exact_match"]["value"] == 1.0
    assert report["datasets"]["capitals"]["n"] == 8


def test_diff_lists_flipped_items_change_and_settings(capitals, tmp_path):
    base, _ = run(ScriptedEngine(lambda q: "Paris" if "France" in q else "?"), capitals, tmp_path / "a")
    better, _ = run(ScriptedEngine(lambda q: CAPITALS[country(q)] if "Peru" not in q else "?"), capitals,
                    tmp_path / "b")
    diff = eval_diff(base["run_dir"], better["run_dir"])
    d = diff["datasets"]["capitals"]
    assert d["a"] == 0.125 and d["b"] == 0.875 and d["better"] == 6 and d["worse"] == 0
    assert {f["id"] for f in d["flipped"]} == set(CAPITALS) - {"France", "Peru"}
    assert d["change"]["value"] == 0.75 and d["change"]["ci95"][0] > 0
    assert "run_dir" not in diff["settings"]
    assert "capitals: exact_match 0.125 -> 0.875" in format_diff(diff)


def test_model_that_answers_nothing_is_reported(capitals, tmp_path):
    report, _ = run(ScriptedEngine(lambda q: ""), capitals, tmp_path / "out")
    result = report["datasets"]["capitals"]
    assert result["empty_answers"] == 8 and "answered nothing on all 8 items" in result["warnings"][0]


def test_unreachable_eval_url_is_a_clear_message(capitals, tmp_path):
    with pytest.raises(ConfigError, match=r"--eval_url http://127.0.0.1:9/v1: cannot reach the server"):
        eval_main({"eval_url": "http://127.0.0.1:9/v1", "eval_dataset": [str(capitals)],
                   "eval_output_dir": str(tmp_path)})


def test_bad_flags(capitals, tmp_path):
    with pytest.raises(ConfigError, match="unknown key"):
        eval_main({"model": "x", "eval_dataset": [str(capitals)], "eval_generation_config": '{"max_tokenz": 3}'})
    with pytest.raises(ConfigError, match="not valid JSON"):
        eval_main({"model": "x", "eval_dataset": [str(capitals)], "eval_dataset_args": "{oops"})
    with pytest.raises(ConfigError, match="--eval_dataset is required"):
        eval_main({"model": "x"})


def test_list_prints_the_benchmarks(capsys):
    assert eval_main(types.SimpleNamespace(eval_list=True)) is None
    assert "gsm8k" in capsys.readouterr().out


def test_eval_main_on_a_tiny_model(tiny_dir, write_jsonl, tmp_path, capsys):
    """Real engine, both modes: generation (continuous batching) and multiple choice by log-likelihood."""
    qa = write_jsonl([{"query": f"Say {w}", "response": w} for w in ("one", "two", "three")], "qa.jsonl")
    mc = write_jsonl([{"question": f"Pick {w}", "choices": ["one", "two", "three"], "answer": i}
                      for i, w in enumerate(("one", "two", "three"))], "mc.jsonl")
    cfg = types.SimpleNamespace(model=str(tiny_dir), eval_dataset=f"{qa},{mc}", eval_output_dir=str(tmp_path),
                                eval_generation_config={"max_tokens": 4}, eval_progress=False)
    report = eval_main(cfg)
    assert set(report["datasets"]) == {"qa", "mc"}
    assert report["datasets"]["mc"]["mode"] == "loglik" and report["datasets"]["mc"]["chat_template"] is False
    assert report["datasets"]["qa"]["mode"] == "generate" and report["datasets"]["qa"]["n"] == 3
    mc_lines = [json.loads(x) for x in (Path(report["run_dir"]) / "predictions" / "mc.jsonl").read_text().splitlines()]
    assert all(len(x["loglikelihoods"]) == 3 and x["extracted"] in "ABC" for x in mc_lines)
    assert report["config"]["generation"]["max_new_tokens"] == 4 and report["config"]["model"] == str(tiny_dir)
    assert "exact_match *" in capsys.readouterr().out


def test_multiple_choice_by_generation_and_few_shot_prompts(write_jsonl, tmp_path):
    path = write_jsonl([{"question": f"Capital of {c}?", "choices": ["Oslo", city], "answer": 1, "id": c}
                        for c, city in list(CAPITALS.items())[:4]], "mc.jsonl")
    seen = []

    def answer(question):
        seen.append(question)
        return "<think>B looks right</think>Answer: B" if "France" in question else "A"

    task = load_task(str(path), CFG, None, None, 0, {})
    folder = new_run_dir(tmp_path)
    settings = RunSettings(RequestConfig(max_new_tokens=8, temperature=0), num_fewshot=2, progress=False)
    engine = ScriptedEngine(answer)
    engine.messages = []
    original = engine.infer

    def recording(requests, config=None):
        engine.messages.extend(r.messages for r in requests)
        return original(requests, config)

    engine.infer = recording
    report = evaluate(engine, [task], settings, folder, {}, requested_mode="generate", print_table=False)
    result = report["datasets"]["mc"]
    assert result["mode"] == "generate" and result["metrics"]["acc"]["value"] == 0.25
    assert all("\nA. Oslo\nB. " in q and q.endswith("from the given choices directly.") for q in seen)
    first = engine.messages[0]
    assert len(first) == 5 and first[1]["role"] == "assistant" and first[1]["content"] == "B"   # 2 shots, own last
    assert all(m[0]["content"] != m[-1]["content"] for m in engine.messages)                   # never itself


def test_server_lost_mid_run_keeps_answers_and_resume_flag_continues(capitals, tmp_path, monkeypatch):
    """Through eval_main (the command line's path): the server stops answering after 3 items -> a message naming
    --resume and the run folder; the 3 answers stay in predictions/; --resume FOLDER asks only the other 5."""
    import httpx

    from swiftall.pipelines import eval as eval_pipeline

    def lost(question):
        raise httpx.ConnectError("connection refused")

    calls = {"n": 0}

    def flaky(question):
        calls["n"] += 1
        return CAPITALS[country(question)] if calls["n"] <= 3 else lost(question)

    healthy = ScriptedEngine(lambda q: CAPITALS[country(q)])
    engines = iter([ScriptedEngine(flaky), healthy])
    monkeypatch.setattr(eval_pipeline, "http_engine", lambda cfg, default: next(engines))
    args = {"eval_url": "http://127.0.0.1:9/v1", "eval_dataset": [str(capitals)], "eval_output_dir": str(tmp_path),
            "eval_progress": False, "eval_concurrency": 1}
    with pytest.raises(ConfigError, match=r"the server stopped answering .* rerun with --resume (\S+) to continue") \
            as err:
        eval_main(args)
    folder = Path(str(err.value).split("--resume ")[1].split()[0])
    assert len((folder / "predictions" / "capitals.jsonl").read_text().splitlines()) == 3
    report = eval_main({**args, "resume": str(folder)})
    assert healthy.calls == 5 and report["run_dir"] == str(folder)
    assert report["datasets"]["capitals"]["metrics"]["exact_match"]["value"] == 1.0


def test_a_local_engine_batches_at_its_width_and_answers_equal_each_prompt_alone(tiny_dir, write_jsonl, tmp_path):
    """--eval_concurrency below the engine's batch still fills the batch (a backlog of twice its width), and the
    prefix the prompts share (template and instruction, computed once) changes no answer."""
    from swiftall.infer.pt import PtEngine

    words = ("apple", "river", "stone", "cloud", "green", "quick", "silver", "table", "window", "garden")
    path = write_jsonl([{"query": f"Repeat this word exactly once, with nothing else: {w}", "response": w}
                        for w in words], "repeat.jsonl")
    engine = PtEngine.from_pretrained(str(tiny_dir), max_batch_size=4)
    try:
        task = load_task(str(path), CFG, None, None, 0, {})
        settings = RunSettings(RequestConfig(max_new_tokens=6, temperature=0), concurrency=1, progress=False)
        folder = new_run_dir(tmp_path)
        evaluate(engine, [task], settings, folder, {"model": "tiny"}, max_tokens_given=True, print_table=False)
        assert engine.scheduler.widest == 4 and engine.scheduler.prefix.reused_tokens > 0
        rows = [json.loads(x) for x in (folder / "predictions" / "repeat.jsonl").read_text().splitlines()]
        assert len(rows) == len(words)
        for row in rows:
            alone = engine.infer([row["prompt"][-1]["content"]], settings.generation)[0]
            assert row["raw"] == alone.text
    finally:
        engine.close()

"""Evaluation data: local files in swiftall's formats, benchmark names, local copies, the eval cache, offline
messages and bad input. No model; hubs are offline (conftest)."""
import json
import time
import types

import pytest

from swiftall.eval import cache
from swiftall.eval.benchmarks import format_benchmarks, list_benchmarks
from swiftall.eval.items import EvalItem, infer_eval_type
from swiftall.eval.loading import load_task, split_values, subsample
from swiftall.utils.errors import DataError

CFG = types.SimpleNamespace(hub="huggingface", eval_num_fewshot=0, columns={})
REGISTERED = ["gsm8k", "mmlu", "ceval", "cmmlu", "arc", "hellaswag", "truthfulqa_mc", "ifeval", "humaneval",
              "textvqa", "coco_caption", "mmmu", "docvqa", "chartqa", "pope", "librispeech"]


def task(spec, eval_type=None, limit=None, args=None):
    return load_task(spec, CFG, eval_type, limit, 0, args or {})


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SWIFTALL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_local_formats_become_items(write_jsonl):
    path = write_jsonl([
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"},
                      {"role": "assistant", "content": "Paris"}]},
        {"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]},
        {"query": "Colour of the sky?", "response": "blue", "id": "sky"},
    ])
    t = task(str(path))
    assert t.eval_type == "qa" and [i.references for i in t.items] == [["Paris"], ["4"], ["blue"]]
    assert t.items[0].messages[0]["role"] == "system" and t.items[0].messages[-1]["role"] == "user"
    assert t.items[2].id == "sky" and t.name == "data"


def test_multiple_choice_rows(write_jsonl):
    path = write_jsonl([{"question": "Sky?", "choices": ["green", "blue"], "answer": 1},
                        {"question": "2+2?", "choices": {"A": "3", "B": "4"}, "answer": "B"},
                        {"question": "France?", "choices": ["Rome", "Paris"], "answer": "Paris"}])
    t = task(str(path))
    assert t.eval_type == "mcq" and [i.answer_index for i in t.items] == [1, 1, 1]
    assert t.items[1].choices == ["3", "4"]


def test_csv_and_eval_type_inference(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text("query,response\nWho wrote Hamlet?,Shakespeare\n")
    assert task(str(path)).items[0].references == ["Shakespeare"]
    vqa = [EvalItem(str(i), [{"role": "user", "content": f"<image>What is written here {i}?"}], ["a"] * 10,
                    media={"images": ["x.png"]}) for i in range(4)]
    caption = [EvalItem(str(i), [{"role": "user", "content": "<image>Describe this image."}], ["a cat"],
                        media={"images": ["x.png"]}) for i in range(20)]
    assert infer_eval_type(vqa) == "vqa" and infer_eval_type(caption) == "caption"


def test_bad_input_messages(write_jsonl, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="empty.jsonl is empty"):
        task(str(empty))
    for name, text in (("empty.json", "[]"), ("blank.jsonl", "\n  \n"), ("header.csv", "query,response\n")):
        (tmp_path / name).write_text(text)
        with pytest.raises(DataError, match=rf"{name}: the file holds no rows .* leave it out of --eval_dataset"):
            task(str(tmp_path / name))
    no_ref = write_jsonl([{"query": "a question without an answer"}], "noref.jsonl")
    with pytest.raises(DataError, match=r"noref.jsonl:1: no reference answer"):
        task(str(no_ref))
    bad_mc = write_jsonl([{"question": "q", "choices": ["a", "b"], "answer": "E"}], "badmc.jsonl")
    with pytest.raises(DataError, match=r"badmc.jsonl:1: field 'answer' 'E'"):
        task(str(bad_mc))
    with pytest.raises(DataError, match=r"\(did you mean gsm8k\?\)"):
        task("gsm8kk")
    with pytest.raises(DataError, match="did you mean hellaswag"):
        task("helaswag")


def test_offline_benchmark_fails_fast_naming_hub_id_and_local_copy(isolated_cache):
    started = time.time()
    with pytest.raises(DataError) as err:
        task("gsm8k")
    message = str(err.value)
    assert "openai/gsm8k" in message and "--eval_dataset gsm8k=path" in message and "cached" in message
    assert time.time() - started < 30


def test_local_copy_of_a_benchmark_in_its_hub_columns(write_jsonl):
    path = write_jsonl([{"question": "Tom has 3 apples and buys 4. How many?", "answer": "3+4=7\n#### 7"},
                        {"question": "Half of 1,000?", "answer": "#### 500"}], "gsm.jsonl")
    t = task(f"gsm8k={path}")
    assert t.eval_type == "math" and [i.references for i in t.items] == [["7"], ["500"]]
    assert t.source["kind"] == "local copy" and t.source["hub_id"] == "openai/gsm8k"
    wrong = write_jsonl([{"q": "x"}], "wrong.jsonl")
    with pytest.raises(DataError, match="must keep the hub's columns"):
        task(f"gsm8k={wrong}")


def test_cached_benchmark_is_read_without_the_hub(isolated_cache):
    items = [EvalItem(str(i), [{"role": "user", "content": f"q{i}"}], ["A"], ["x", "y"], 0, subset="s")
             for i in range(10)]
    cache.save_items(cache.cache_dir("arc", "allenai/ai2_arc", "ARC-Challenge", "test"), items, {"hub_id": "x"})
    t = task("arc", limit=4)
    assert len(t.items) == 4 and t.benchmark.name == "arc" and t.source["hub_id"] == "allenai/ai2_arc"
    assert [i.id for i in t.items] == [i.id for i in task("arc", limit=4).items]   # same draw every time


def test_humaneval_needs_an_explicit_opt_in(isolated_cache):
    with pytest.raises(DataError, match="allow_code_execution"):
        task("humaneval")


def test_registry_lists_every_issue_benchmark():
    names = {b.name for b in list_benchmarks()}
    assert set(REGISTERED) <= names
    text = format_benchmarks()
    assert all(name in text for name in REGISTERED) and "openai/gsm8k" in text


def test_split_values_and_subsample():
    assert split_values(["textvqa,coco_caption", "a.jsonl"]) == ["textvqa", "coco_caption", "a.jsonl"]
    items = [EvalItem(str(i), [], ["x"]) for i in range(100)]
    picked = subsample(items, 10, 0)
    assert len(picked) == 10 and int(picked[-1].id) > 50 and [int(i.id) for i in picked] == sorted(
        int(i.id) for i in picked)


def test_sandbox_runs_code_in_a_subprocess_with_limits():
    from swiftall.eval.sandbox import completion_code, passes

    prompt = "def add(a, b):\n    \"\"\"Add.\"\"\"\n"
    test = "def check(f):\n    assert f(2, 3) == 5\n"
    good = completion_code("```python\ndef add(a, b):\n    return a + b\n```", prompt, "add")
    assert passes(good, test, "add") == (True, "passed")
    assert passes(completion_code("    return a - b\n", prompt, "add"), test, "add")[0] is False
    assert passes(completion_code("    while True: pass\n", prompt, "add"), test, "add", timeout=2)[0] is False


def test_self_cognition_from_the_data_registry(tmp_path):
    cfg = types.SimpleNamespace(hub="huggingface", eval_num_fewshot=0, columns={}, model_name=["Swifty"],
                                model_author=["the team"])
    t = load_task("self-cognition#5", cfg, None, None, 0, {})
    assert len(t.items) == 5 and all("Swifty" in i.references[0] or "the team" in i.references[0] for i in t.items)
    assert json.dumps(t.source)


def test_dataset_list_shows_the_benchmarks(capsys):
    from swiftall.cli.main import main

    assert main(["dataset", "list"]) == 0
    out = capsys.readouterr().out
    training, _, benchmarks = out.partition("Evaluation benchmarks")
    assert "alpaca-gpt4-en" in training and "openai/gsm8k" in benchmarks
    assert all(name in benchmarks for name in REGISTERED)
    assert main(["dataset", "list", "--task", "eval"]) == 0
    only = capsys.readouterr().out
    assert "cais/mmlu" in only and "alpaca-gpt4-en" not in only

"""lm-evaluation-harness against `swiftall deploy`: its `local-completions` model (token-id prompts, the default;
echo + logprobs log-likelihood scoring) on a multiple-choice task, and its `local-chat-completions` model (chat
messages, greedy generation, stop strings) on a generative task, both read from local JSONL files, each scoring the
same as lm-eval's own HF backend on the same embedded SmolLM2-135M (within 1 point)."""
from __future__ import annotations

import json

import pytest

lm_eval = pytest.importorskip("lm_eval")
pytest.importorskip("openai")

CAPITALS = [("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"),
            ("Russia", "Moscow"), ("Egypt", "Cairo"), ("Greece", "Athens")]
COLOURS = [("grass", "green"), ("snow", "white"), ("coal", "black"), ("a ripe banana", "yellow")]


def rows() -> list[dict]:
    out = []
    cities = [c for _, c in CAPITALS]
    for i, (country, city) in enumerate(CAPITALS):
        choices = [city, cities[(i + 1) % len(cities)], cities[(i + 3) % len(cities)], cities[(i + 5) % len(cities)]]
        choices = choices[i % 4:] + choices[:i % 4]
        out.append({"question": f"The capital of {country} is", "choices": choices, "answer": choices.index(city)})
    colours = [c for _, c in COLOURS]
    for i, (thing, colour) in enumerate(COLOURS):
        choices = [colour, colours[(i + 1) % len(colours)], colours[(i + 2) % len(colours)]]
        choices = choices[i % 3:] + choices[:i % 3]
        out.append({"question": f"The colour of {thing} is", "choices": choices, "answer": choices.index(colour)})
    for a in range(2, 6):
        answer = a + a
        choices = [str(answer + d) for d in (-1, 0, 1, 2)]
        out.append({"question": f"{a} + {a} =", "choices": choices, "answer": choices.index(str(answer))})
    return out


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm-eval-task")
    data = folder / "mc.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows()))
    (folder / "swiftall_mc.yaml").write_text(f"""task: swiftall_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
target_delimiter: " "
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
""")
    return folder


def evaluate(task_dir, model: str, model_args: dict, task: str = "swiftall_mc", metric: str = "acc,none",
             **kwargs) -> dict:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    return simple_evaluate(model=model, model_args=model_args, tasks=[task],
                           task_manager=TaskManager(include_path=str(task_dir)), batch_size=kwargs.pop("batch_size", 8),
                           log_samples=kwargs.pop("log_samples", False), **kwargs)["results"][task][metric]


@pytest.mark.heavy
def test_local_completions_scores_like_the_hf_backend(smol_dir, task_dir):
    from swiftall.pipelines.deploy import build_app, prepare_deploy_config
    from swiftall.serve.server import ServerThread

    app, engine = build_app(prepare_deploy_config({"model": "smollm2-135m-instruct", "served_model_name": "smol"}))
    with ServerThread(app) as server:
        served = evaluate(task_dir, "local-completions", {
            "model": "smol", "base_url": f"{server.url}/v1/completions", "tokenizer_backend": "huggingface",
            "tokenizer": str(smol_dir), "num_concurrent": 1, "max_retries": 1})
    assert engine.scheduler.busy() == 0
    reference = evaluate(task_dir, "hf", {"pretrained": str(smol_dir), "dtype": "float32", "device": "cpu"})
    print(f"lm-eval acc: local-completions against deploy {served:.4f}, hf backend {reference:.4f}")
    assert reference > 0.4  # the task separates a model from chance (0.25-0.33), so agreement means something
    assert abs(served - reference) <= 0.01


# the well-known capitals above, and eight that small models often get wrong (a bigger city, a former capital)
CHAT_CAPITALS = CAPITALS + [("Australia", "Canberra"), ("Turkey", "Ankara"), ("Switzerland", "Bern"),
                            ("Nigeria", "Abuja"), ("Morocco", "Rabat"), ("New Zealand", "Wellington"),
                            ("Pakistan", "Islamabad"), ("Tanzania", "Dodoma")]


@pytest.fixture(scope="module")
def chat_task_dir(tmp_path_factory):
    """A generative task: the model is asked a country's capital in a chat turn and answers freely (greedy, up to 24
    tokens, stopping at a blank line); the last capitalised word of its answer is compared with the city."""
    folder = tmp_path_factory.mktemp("lm-eval-chat-task")
    data = folder / "capitals.jsonl"
    data.write_text("".join(json.dumps({"country": c, "city": city}) + "\n" for c, city in CHAT_CAPITALS))
    (folder / "swiftall_gen.yaml").write_text(f"""task: swiftall_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "What is the capital of {{{{country}}}}? Answer in one short sentence."
doc_to_target: "{{{{city}}}}"
generation_kwargs:
  until: ["\\n\\n"]
  max_gen_toks: 24
  do_sample: false
filter_list:
  - name: last_name
    filter:
      - function: regex
        regex_pattern: "[A-Z][a-z]+"
        group_select: -1
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
""")
    return folder


@pytest.mark.heavy
def test_local_chat_completions_scores_like_the_hf_backend(smol_dir, chat_task_dir):
    from swiftall.pipelines.deploy import build_app, prepare_deploy_config
    from swiftall.serve.server import ServerThread

    metric = "exact_match,last_name"
    app, engine = build_app(prepare_deploy_config({"model": "smollm2-135m-instruct", "served_model_name": "smol"}))
    with ServerThread(app) as server:
        served = evaluate(chat_task_dir, "local-chat-completions", {
            "model": "smol", "base_url": f"{server.url}/v1/chat/completions", "num_concurrent": 4, "max_retries": 1},
            task="swiftall_gen", metric=metric, apply_chat_template=True, batch_size=1)
    assert engine.scheduler.busy() == 0
    reference = evaluate(chat_task_dir, "hf", {"pretrained": str(smol_dir), "dtype": "float32", "device": "cpu"},
                         task="swiftall_gen", metric=metric, apply_chat_template=True)
    print(f"lm-eval exact_match: local-chat-completions against deploy {served:.4f}, hf backend {reference:.4f}")
    assert reference > 0.3  # the model names most capitals: agreement between the two means something
    assert abs(served - reference) <= 0.01

"""Issue #20: a model trained on tool rows by `swiftall sft` chooses by itself, served with tool_choice="auto" and
no prefill, to call the tool for a weather question about a city it never saw, and to answer in text otherwise.
SmolLM2's chat template ignores tools: the tool list, the calls and the results are written into the prompt as text
(templates/tools.py) in training exactly as in serving, which is what makes the choice learnable."""
from __future__ import annotations

import json

import pytest

from adapters_fixture import one_thread  # noqa: F401 - a fixture

openai = pytest.importorskip("openai")

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather of a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}]
CITIES = ["Paris", "Berlin", "Madrid", "Rome", "Vienna", "Lisbon", "Dublin", "Oslo", "Prague", "Warsaw", "Athens",
          "Tokyo", "Lima", "Cairo", "Sydney", "Toronto"]
NAMES = ["Anna", "Ben", "Carla", "David", "Emma", "Felix", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Leo", "Mia",
         "Nils", "Olga", "Paul"]
HELD_CITIES, HELD_NAMES = ["Chicago", "Munich", "Seoul", "Nairobi"], ["Quinn", "Rosa", "Sam", "Tara"]


def weather_row(city: str) -> dict:
    call = {"type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}
    return {"tools": TOOLS, "messages": [{"role": "user", "content": f"What is the weather like in {city} today?"},
                                         {"role": "assistant", "content": "", "tool_calls": [call]}]}


def greeting_row(name: str) -> dict:
    return {"tools": TOOLS, "messages": [{"role": "user", "content": f"Please say hello to my friend {name}."},
                                         {"role": "assistant", "content": f"Hello, {name}! Nice to meet you."}]}


@pytest.fixture(scope="module")
def tool_run(smol_dir, tmp_path_factory, one_thread):
    from swiftall.pipelines.sft import sft_main

    folder = tmp_path_factory.mktemp("tools")
    rows = [r for c, n in zip(CITIES[:12], NAMES[:12]) for r in (weather_row(c), greeting_row(n))]
    data = folder / "tools.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sft_main({"model": str(smol_dir), "train_type": "lora", "dataset": [str(data)], "num_train_epochs": 2,
              "learning_rate": 2e-3, "per_device_train_batch_size": 4, "max_length": 384, "lora_rank": 8,
              "lora_alpha": 32, "logging_steps": 4, "save_steps": 1000, "output_dir": str(folder / "run"),
              "report_to": "none", "seed": 1})
    return folder / "run"


@pytest.fixture(scope="module")
def served(tool_run):
    from swiftall.pipelines.deploy import build_app, prepare_deploy_config
    from swiftall.serve.server import ServerThread

    app, engine = build_app(prepare_deploy_config({"adapters": [str(tool_run)], "served_model_name": "tools",
                                                   "max_new_tokens": 40}))
    with ServerThread(app) as server:
        yield openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0, timeout=600)
    engine.close()


@pytest.mark.slow  # a LoRA run of 12 steps through swiftall sft, then 8 requests
def test_the_trained_model_calls_the_tool_by_itself_and_only_when_it_should(served):
    def ask(question):
        return served.chat.completions.create(model="tools", tools=TOOLS, tool_choice="auto", temperature=0,
                                              max_tokens=40, messages=[{"role": "user", "content": question}]).choices[0]

    called = {}
    for city in HELD_CITIES:
        choice = ask(f"What is the weather like in {city} today?")
        calls = choice.message.tool_calls or []
        if choice.finish_reason == "tool_calls" and calls and calls[0].function.name == "get_weather":
            called[city] = json.loads(calls[0].function.arguments).get("city")
    assert sum(called.get(city) == city for city in HELD_CITIES) >= 3, called
    answered = []
    for name in HELD_NAMES:
        choice = ask(f"Please say hello to my friend {name}.")
        assert not choice.message.tool_calls and choice.finish_reason == "stop", choice
        answered.append(choice.message.content)
    assert sum(name in text for name, text in zip(HELD_NAMES, answered)) >= 3, answered


def test_a_tool_row_is_trained_on_the_prompt_a_served_request_gets(tiny_dir):
    """SmolLM2's template drops tools and renders a tool-calling turn as empty: before templates/tools.py, sft
    trained such rows on an empty answer with no tool list, while the server wrote both into the prompt."""
    from swiftall.data.convert import to_messages
    from swiftall.data.read import Row
    from swiftall.models import load_tokenizer, resolve_model
    from swiftall.templates import get_template
    from swiftall.templates.tools import inline_tools

    info = resolve_model(str(tiny_dir))
    template = get_template(load_tokenizer(info), info)
    assert not template.renders_tools
    sample = to_messages(Row(weather_row("Paris"), "tools.jsonl", 1))
    trained = template.encode(sample["messages"], tools=sample["tools"])
    answer = template.tokenizer.decode([t for t, label in zip(trained.input_ids, trained.labels) if label != -100])
    assert answer.startswith('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>')
    served = template.encode_prompt(inline_tools(sample["messages"][:1], TOOLS))   # what the server builds
    assert served == trained.input_ids[:len(served)] and "get_weather" in template.tokenizer.decode(served)

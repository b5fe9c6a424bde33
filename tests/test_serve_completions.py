"""`/v1/completions` takes every prompt form OpenAI documents (a string, strings, token ids, token-id lists), one
choice per prompt, and scores prompts (`echo` + `logprobs`, as lm-evaluation-harness asks) with the log-probabilities
the model itself gives -- checked against a plain transformers forward. Real client, embedded SmolLM2-135M."""
from __future__ import annotations

import json
import math

import pytest

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")
torch = pytest.importorskip("torch")

NAME = "smol"
TEXTS = ["The capital of France is", "One, two, three,"]


@pytest.fixture(scope="module")
def server(smol_dir):
    from swiftall.pipelines.deploy import build_app, prepare_deploy_config
    from swiftall.serve.server import ServerThread

    app, engine = build_app(prepare_deploy_config({"model": str(smol_dir), "served_model_name": NAME,
                                                   "max_new_tokens": 16}))
    with ServerThread(app) as s:
        s.engine = engine
        yield s


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def tokenizer(server):
    return server.engine.tokenizer


@pytest.fixture(scope="module")
def ids(tokenizer):
    return [tokenizer(t, add_special_tokens=True)["input_ids"] for t in TEXTS]


@pytest.fixture(scope="module")
def alone(client):
    """Each prompt sent alone, as a string: what every other form must answer."""
    return [client.completions.create(model=NAME, prompt=t, max_tokens=5, temperature=0).choices[0].text
            for t in TEXTS]


def test_every_prompt_form_gives_one_choice_per_prompt(client, ids, alone):
    assert all(alone)
    for prompt in (TEXTS, ids):
        r = client.completions.create(model=NAME, prompt=prompt, max_tokens=5, temperature=0)
        assert [c.index for c in r.choices] == [0, 1]
        assert [c.text for c in r.choices] == alone
        assert r.usage.prompt_tokens == sum(len(i) for i in ids)
        assert r.usage.completion_tokens == 10
    single = client.completions.create(model=NAME, prompt=ids[1], max_tokens=5, temperature=0)
    assert [c.text for c in single.choices] == [alone[1]]
    several = client.completions.create(model=NAME, prompt=ids, max_tokens=5, temperature=0, n=2)
    assert [c.index for c in several.choices] == [0, 1, 2, 3]
    assert [c.text for c in several.choices] == [alone[0], alone[0], alone[1], alone[1]]


def test_several_prompts_stream_by_index(client, ids, alone):
    texts: dict[int, str] = {}
    finished = set()
    for chunk in client.completions.create(model=NAME, prompt=ids, max_tokens=5, temperature=0, stream=True):
        for c in chunk.choices:
            texts[c.index] = texts.get(c.index, "") + c.text
            if c.finish_reason:
                finished.add(c.index)
    assert texts == {0: alone[0], 1: alone[1]} and finished == {0, 1}


def reference_logprobs(smol_dir, ids: list[int]) -> list[float]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(smol_dir, torch_dtype=torch.float32).eval()
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
    picked = torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
    return picked.tolist()


def test_echo_with_logprobs_scores_the_prompt_tokens(server, ids, tokenizer, smol_dir):
    """lm-evaluation-harness's log-likelihood request: token-id prompts, echo, logprobs 1, max_tokens 1."""
    body = {"model": NAME, "prompt": ids, "temperature": 0, "max_tokens": 1, "logprobs": 1, "echo": True,
            "seed": 1234}
    r = httpx.post(server.url + "/v1/completions", json=body, timeout=120)
    assert r.status_code == 200, r.text
    choices = sorted(r.json()["choices"], key=lambda c: c["index"])
    for choice, prompt in zip(choices, ids):
        lp = choice["logprobs"]
        assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == len(prompt) + 1
        assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
        assert choice["text"].startswith(tokenizer.decode(prompt))
        expected = reference_logprobs(smol_dir, prompt)
        got = lp["token_logprobs"][1:len(prompt)]
        assert max(abs(a - b) for a, b in zip(got, expected)) < 1e-3
        for value, top in zip(got, lp["top_logprobs"][1:len(prompt)]):
            assert len(top) == 1 and max(top.values()) >= value - 1e-6
        assert lp["tokens"][:len(prompt)] == [tokenizer.decode([t]) for t in prompt]


def test_echo_with_no_new_tokens_only_scores(server, ids, tokenizer):
    body = {"model": NAME, "prompt": TEXTS[0], "max_tokens": 0, "logprobs": 0, "echo": True}
    choice = httpx.post(server.url + "/v1/completions", json=body, timeout=120).json()["choices"][0]
    assert choice["text"] == TEXTS[0] and choice["finish_reason"] == "length"
    assert len(choice["logprobs"]["tokens"]) == len(ids[0])
    assert all(math.isfinite(v) and v <= 0 for v in choice["logprobs"]["token_logprobs"][1:])
    lines = httpx.post(server.url + "/v1/completions", json={**body, "stream": True}, timeout=120).text.splitlines()
    chunks = [json.loads(x[6:]) for x in lines if x.startswith("data: {")]
    assert [c["choices"][0]["text"] for c in chunks] == [TEXTS[0]]
    assert chunks[0]["choices"][0]["logprobs"]["token_logprobs"] == choice["logprobs"]["token_logprobs"]


@pytest.mark.parametrize("prompt, param, words", [
    ([[1, 2], [10 ** 9]], "prompt.1", "outside this model's vocabulary"),
    ([5, -1], "prompt", "outside this model's vocabulary"),
    ([[1, 2], []], "prompt.1", "must not be empty"),
    ([], "prompt", "must not be empty"),
])
def test_bad_token_prompts_are_400(server, prompt, param, words):
    r = httpx.post(server.url + "/v1/completions", json={"model": NAME, "prompt": prompt, "max_tokens": 2})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == param and words in error["message"]


def test_max_tokens_zero_needs_echo(server):
    r = httpx.post(server.url + "/v1/completions", json={"model": NAME, "prompt": "Hi", "max_tokens": 0})
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens"


@pytest.mark.parametrize("refusal, status", [("ShuttingDownError", 503), ("QueueFullError", 429)])
def test_embeddings_refused_by_a_busy_or_closing_engine_keep_the_error_shape(refusal, status):
    """Embeddings queue on the scheduler's thread like chat: a closing engine is a 503, a full queue a 429."""
    from fastapi.testclient import TestClient
    from serve_fakes import RecordingEngine

    from swiftall.infer import engine as engines
    from swiftall.serve.app import create_app
    from swiftall.serve.handlers import ServeSettings

    class Refusing(RecordingEngine):
        def embed(self, texts, adapter=None):
            raise getattr(engines, refusal)("not now")

    with TestClient(create_app(Refusing(), ServeSettings(served_model_name="m"))) as client:
        r = client.post("/v1/embeddings", json={"model": "m", "input": "hello"})
    assert r.status_code == status
    assert r.json()["error"]["message"] == "not now"

"""Property test of the HTTP API: request bodies drawn by hypothesis -- well-formed, half-formed and junk, for chat,
completions (every prompt form, echo, logprobs) and embeddings, streamed and not -- against a tiny random model.
Whatever the body, the server answers: a 2xx, or a 4xx in OpenAI's error shape; never a 5xx, never a broken
stream."""
from __future__ import annotations

import json

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

pytest.importorskip("fastapi")
NAME = "tiny"
EXAMPLES = 120

junk = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=False),
                 st.text(max_size=8), st.lists(st.integers(-5, 5), max_size=3),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
small_int = st.one_of(st.integers(-2, 6), st.sampled_from([10 ** 12, -10 ** 12, 2 ** 63]))
urls = st.sampled_from(["data:image/png;base64,iVBORw0KGgo=", "data:image/png;base64,!!!", "http://127.0.0.1:9/a.png",
                        "http://169.254.169.254/", "file:///etc/passwd", "/etc/passwd", "ftp://x/y", "http://[::1",
                        "http://", "", "C:\\x.png", "http://localhost\x00/a", "data:,"])
part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(st.text(max_size=20), junk)}),
    st.fixed_dictionaries({"type": st.sampled_from(["image_url", "video_url", "audio_url"]),
                           "image_url": st.one_of(st.fixed_dictionaries({"url": urls}), urls, junk)}),
    st.fixed_dictionaries({"type": st.just("input_audio"),
                           "input_audio": st.one_of(st.fixed_dictionaries({"data": st.text(max_size=8),
                                                                           "format": st.sampled_from(["wav", "mp3"])}),
                                                    junk)}),
    st.dictionaries(st.text(max_size=5), junk, max_size=2))
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "tool", "developer", "robot"]),
     "content": st.one_of(st.text(max_size=30), st.none(), st.lists(part, max_size=3), junk)},
    optional={"name": st.text(max_size=5), "tool_calls": st.one_of(junk, st.just([])), "tool_call_id": junk})
token_ids = st.lists(st.one_of(st.integers(0, 600), st.integers(-3, 2 ** 40)), max_size=6)
prompt = st.one_of(st.text(max_size=30), st.lists(st.text(max_size=10), max_size=3), token_ids,
                   st.lists(token_ids, max_size=3), junk)
common = {"model": st.one_of(st.just(NAME), st.just(NAME), junk), "max_tokens": st.one_of(st.none(), small_int),
          "temperature": st.one_of(st.none(), st.floats(-1, 3)), "top_p": st.one_of(st.none(), st.floats(-1, 2)),
          "top_k": st.one_of(st.none(), small_int), "n": st.one_of(st.just(1), small_int),
          "stop": st.one_of(st.none(), st.text(max_size=3), st.lists(st.text(max_size=3), max_size=6), junk),
          "seed": st.one_of(st.none(), st.integers(-2 ** 70, 2 ** 70)), "stream": st.booleans(),
          "stream_options": st.one_of(st.none(), st.fixed_dictionaries({"include_usage": st.booleans()}), junk),
          "repetition_penalty": st.one_of(st.none(), st.floats(-1, 3)), "ignore_eos": st.booleans()}
chat = st.fixed_dictionaries({"messages": st.one_of(st.lists(message, min_size=1, max_size=3), junk)},
                             optional={**common, "logprobs": st.one_of(st.booleans(), junk),
                                       "top_logprobs": st.one_of(st.none(), small_int),
                                       "max_completion_tokens": st.one_of(st.none(), small_int),
                                       "tools": st.one_of(st.none(), st.just([{"type": "function", "function": {
                                           "name": "f", "parameters": {"type": "object"}}}]), junk),
                                       "tool_choice": st.one_of(st.sampled_from(["none", "auto", "required"]), junk)})
completion = st.fixed_dictionaries({"prompt": prompt}, optional={
    **common, "logprobs": st.one_of(st.none(), small_int), "echo": st.booleans(),
    "suffix": st.one_of(st.none(), st.text(max_size=5))})
embedding = st.fixed_dictionaries({"input": prompt}, optional={
    "model": common["model"], "encoding_format": st.sampled_from(["float", "base64", "hex"]),
    "dimensions": st.one_of(st.none(), small_int)})
requests = st.one_of(st.tuples(st.just("/v1/chat/completions"), chat),
                     st.tuples(st.just("/v1/completions"), completion),
                     st.tuples(st.just("/v1/embeddings"), embedding),
                     st.tuples(st.sampled_from(["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]), junk))


@pytest.fixture(scope="module")
def client(tiny_dir):
    from fastapi.testclient import TestClient

    from swiftall.pipelines.deploy import build_app, prepare_deploy_config

    app, engine = build_app(prepare_deploy_config({"model": str(tiny_dir), "served_model_name": NAME,
                                                   "max_new_tokens": 4, "max_body_bytes": 4096}))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, engine


def check(response, body) -> None:
    where = f"{response.status_code} for {json.dumps(body)[:400]}: {response.text[:400]}"
    assert response.status_code < 500, where
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"], where
        return
    if response.headers["content-type"].startswith("text/event-stream"):
        lines = [x for x in response.text.split("\n\n") if x]
        assert lines[-1] == "data: [DONE]", where
        for line in lines[:-1]:
            assert "error" not in json.loads(line[6:]), where
    else:
        assert response.json()["object"] in ("chat.completion", "text_completion", "list"), where


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(request=requests)
def test_no_body_makes_the_server_fail(client, request):
    c, _ = client
    path, body = request
    check(c.post(path, json=body), body)


def test_no_sequence_is_left_behind(client):
    """After all of the above (and a few requests more), the scheduler holds no sequence."""
    import time

    c, engine = client
    for body in ({"model": NAME, "prompt": [[1, 2], [3]], "max_tokens": 2, "stream": True},
                 {"model": NAME, "messages": [{"role": "user", "content": "hi"}], "n": 3}):
        path = "/v1/completions" if "prompt" in body else "/v1/chat/completions"
        check(c.post(path, json=body), body)
    deadline = time.time() + 10
    while engine.scheduler.busy() and time.time() < deadline:
        time.sleep(0.05)
    assert engine.scheduler.busy() == 0

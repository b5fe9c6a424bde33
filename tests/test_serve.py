"""`swiftall deploy` end to end: the real `openai` client against a server started here on the embedded
SmolLM2-135M-Instruct (127.0.0.1 only), with two LoRA adapters and an API key."""
from __future__ import annotations

import base64
import json
import math
import struct
import threading

import pytest

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")
torch = pytest.importorskip("torch")

KEY = "sk-test-key"
NAME = "smol"
Q = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def adapters(smol_dir, tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folders = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(smol_dir),
                               LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"],
                                          init_lora_weights=False))
        folder = tmp_path_factory.mktemp(f"smol-lora{seed}")
        model.save_pretrained(folder)
        folders.append(folder)
    return folders


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media")
    (folder / "cat.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return folder


@pytest.fixture(scope="module")
def server(smol_dir, adapters, media_dir):
    from swiftall.pipelines.deploy import build_app, prepare_deploy_config
    from swiftall.serve.server import ServerThread

    app, engine = build_app(prepare_deploy_config({
        "model": str(smol_dir), "served_model_name": NAME, "adapters": [f"a={adapters[0]}", f"b={adapters[1]}"],
        "api_key": KEY, "max_body_bytes": 64 * 1024, "allow_local_media": str(media_dir), "max_new_tokens": 16}))
    with ServerThread(app) as s:
        s.app, s.engine = app, engine
        yield s


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=120)


def greedy(client, model=NAME, **kw):
    return client.chat.completions.create(model=model, messages=kw.pop("messages", Q), max_tokens=kw.pop("max_tokens", 8),
                                          temperature=0, **kw)


def test_models_health_and_auth(server, client):
    ids = [m.id for m in client.models.list().data]
    assert ids == [NAME, "a", "b"]
    assert httpx.get(server.url + "/health").status_code == 200  # open without a key
    for key in ("wrong", None):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        r = httpx.get(server.url + "/v1/models", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url + "/v1", api_key="nope", max_retries=0).models.list()
    schema = httpx.get(server.url + "/openapi.json", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert "/v1/chat/completions" in schema["paths"] and "/v1/embeddings" in schema["paths"]


def test_chat_stream_and_usage(client):
    whole = greedy(client, max_tokens=6)
    choice = whole.choices[0]
    assert choice.message.role == "assistant" and "Paris" in choice.message.content
    assert whole.usage.completion_tokens <= 6 and whole.usage.prompt_tokens > 5
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens
    chunks = list(client.chat.completions.create(model=NAME, messages=Q, max_tokens=6, temperature=0, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == choice.finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_stream_ends_with_done(server):
    body = {"model": NAME, "messages": Q, "max_tokens": 3, "stream": True}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as r:
        lines = [line for line in r.iter_lines() if line]
    assert r.headers["content-type"].startswith("text/event-stream")
    assert lines[-1] == "data: [DONE]" and all(line.startswith("data: ") for line in lines)


def test_two_adapters_chosen_by_model_name(client):
    answers = {m: greedy(client, model=m, max_tokens=6).choices[0].message.content for m in (NAME, "a", "b")}
    assert len(set(answers.values())) == 3, answers


def test_completions_with_logprobs_and_echo(client):
    r = client.completions.create(model=NAME, prompt="The capital of France is", max_tokens=4, logprobs=2,
                                  temperature=0, echo=True)
    c = r.choices[0]
    assert c.text.startswith("The capital of France is") and "Paris" in c.text
    lp = c.logprobs  # with echo, as OpenAI: the prompt's tokens (the first without a log-probability), then the answer's
    usage = r.usage
    assert len(lp.tokens) == len(lp.token_logprobs) == usage.prompt_tokens + usage.completion_tokens
    assert usage.completion_tokens == 4 and lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    assert all(v <= 0 for v in lp.token_logprobs[1:])
    answer = slice(usage.prompt_tokens, None)
    assert all(len(top) == 2 and max(top.values()) == pytest.approx(v) for top, v in zip(lp.top_logprobs[answer],
                                                                                           lp.token_logprobs[answer]))
    assert all(len(top) == 2 and max(top.values()) >= v for top, v in zip(lp.top_logprobs[1:usage.prompt_tokens],
                                                                          lp.token_logprobs[1:usage.prompt_tokens]))


def test_chat_logprobs_n_seed_and_stop(client):
    r = greedy(client, logprobs=True, top_logprobs=3, max_tokens=4)
    content = r.choices[0].logprobs.content
    assert len(content) == 4 and all(len(t.top_logprobs) == 3 for t in content)
    assert "".join(t.token for t in content) == r.choices[0].message.content
    sampled = dict(model=NAME, messages=[{"role": "user", "content": "Name a fruit."}], max_tokens=5, n=3, seed=11,
                   temperature=1.3)
    one, two = client.chat.completions.create(**sampled), client.chat.completions.create(**sampled)
    texts = [c.message.content for c in one.choices]
    assert len(texts) == 3 and texts == [c.message.content for c in two.choices]
    assert [c.index for c in one.choices] == [0, 1, 2] and len(set(texts)) > 1
    full = greedy(client, max_tokens=8).choices[0].message.content
    stop = full.split()[2]
    cut = greedy(client, max_tokens=8, stop=[stop]).choices[0]
    assert cut.message.content == full[: full.index(stop)] and cut.finish_reason == "stop"


def test_embeddings(client):
    r = client.embeddings.create(model=NAME, input=["Paris is in France", "Paris is in France", "bananas"])
    vectors = [d.embedding for d in r.data]
    assert len(vectors) == 3 and len(vectors[0]) == 576
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-4) for v in vectors)
    assert vectors[0] == vectors[1] and vectors[0] != vectors[2]
    assert r.usage.prompt_tokens > 0
    b64 = client.embeddings.create(model=NAME, input="bananas", encoding_format="base64").data[0].embedding
    decoded = struct.unpack("<576f", base64.b64decode(b64))
    assert decoded == pytest.approx(vectors[2], abs=1e-6)


TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                            "parameters": {"type": "object",
                                                           "properties": {"city": {"type": "string"}}}}}]


def test_tool_call(client):
    r = client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": "Weather in Paris?"}],
                                       tools=TOOLS, tool_choice={"type": "function",
                                                                 "function": {"name": "get_weather"}},
                                       max_tokens=16, temperature=0)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    assert isinstance(call.function.arguments, str)
    follow_up = client.chat.completions.create(model=NAME, max_tokens=3, temperature=0, tools=TOOLS, messages=[
        {"role": "user", "content": "Weather in Paris?"}, choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 21})}])
    assert follow_up.choices[0].message.role == "assistant"
    streamed = list(client.chat.completions.create(
        model=NAME, messages=[{"role": "user", "content": "Weather in Paris?"}], tools=TOOLS, max_tokens=16,
        temperature=0, stream=True, tool_choice={"type": "function", "function": {"name": "get_weather"}}))
    calls = [tc for c in streamed if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls and calls[0].function.name == "get_weather"


def test_error_paths(server, client):
    with pytest.raises(openai.NotFoundError) as e:
        greedy(client, model="gpt-4")
    assert e.value.body["code"] == "model_not_found" and e.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as e:
        greedy(client, max_tokens=9000)
    assert e.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=NAME, messages=Q, temperature=5)
    assert e.value.body["param"] == "temperature" and e.value.status_code == 400
    headers = {"Authorization": f"Bearer {KEY}"}
    big = {"model": NAME, "messages": [{"role": "user", "content": "x" * 70_000}]}
    r = httpx.post(server.url + "/v1/chat/completions", json=big, headers=headers)
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]
    r = httpx.post(server.url + "/v1/chat/completions", content=b"{not json", headers=headers)
    assert r.status_code == 400 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    r = httpx.get(server.url + "/v1/nothing", headers=headers)
    assert r.status_code == 404 and "error" in r.json()


def image_message(url: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


@pytest.mark.parametrize("url, why", [
    ("/etc/passwd", "outside --allow_local_media"),
    ("file:///etc/passwd", "outside --allow_local_media"),
    ("http://127.0.0.1:9/cat.png", "non-public address"),
    ("http://[::1]/cat.png", "non-public address"),
    ("http://10.0.0.8/cat.png", "non-public address"),
    ("ftp://example.com/cat.png", "scheme 'ftp:' is not supported"),
])
def test_media_urls_refused(client, url, why):
    with pytest.raises(openai.BadRequestError) as e:
        greedy(client, messages=image_message(url))
    assert why in e.value.body["message"]


def test_allowed_media_reaches_the_template(client, media_dir):
    """data: URLs and files under --allow_local_media pass the URL rules; this text-only model then refuses them."""
    png = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    for url in (png, str(media_dir / "cat.png")):
        with pytest.raises(openai.BadRequestError) as e:
            greedy(client, messages=image_message(url))
        assert "text-only" in e.value.body["message"]


def test_full_queue_answers_429(server, client):
    scheduler = server.engine.scheduler
    saved, scheduler.max_queue = scheduler.max_queue, 0
    try:
        with pytest.raises(openai.RateLimitError) as e:
            greedy(client)
        assert "retry" in e.value.body["message"]
        with pytest.raises(openai.RateLimitError):
            list(client.chat.completions.create(model=NAME, messages=Q, max_tokens=4, stream=True))
    finally:
        scheduler.max_queue = saved


def test_concurrent_requests_are_batched(server, client):
    scheduler = server.engine.scheduler
    scheduler.widest = 0
    results = [None] * 6

    def ask(i):
        results[i] = greedy(client, messages=[{"role": "user", "content": f"Count to {i + 3}."}], max_tokens=6)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r is not None and r.choices[0].message.content for r in results)
    assert scheduler.widest >= 3


def test_http_client_engine_and_graceful_shutdown(server):
    """A second server over the same engine: the HttpEngine talks to it, and stopping it lets an in-flight
    streamed answer finish."""
    from swiftall.infer import RequestConfig
    from swiftall.infer.client import HttpEngine
    from swiftall.serve import create_app
    from swiftall.serve.server import ServerThread

    second = ServerThread(create_app(server.engine, server.app.state.handlers.settings, close_engine=False)).start()
    remote = HttpEngine(second.url + "/v1", model=NAME, api_key=KEY)
    cfg = RequestConfig(max_new_tokens=4, temperature=0)
    local = server.engine.infer([{"messages": Q, "adapter": "__base__"}], cfg)[0]
    answer = remote.infer([{"messages": Q}], cfg)[0]
    assert answer.text == local.text and answer.completion_tokens == local.completion_tokens
    events, first = [], threading.Event()

    def consume():
        for event in remote.stream_events({"messages": Q}, RequestConfig(max_new_tokens=12, temperature=0)):
            events.append(event)
            first.set()

    reader = threading.Thread(target=consume)
    reader.start()
    assert first.wait(60)
    second.stop()                     # shutdown begins while the answer is being generated
    reader.join(60)
    assert events[-1].finish_reason in ("stop", "length") and events[-1].completion_tokens > 0
    assert not second.thread.is_alive()
    remote.close()

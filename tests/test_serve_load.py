"""`swiftall deploy` with two LoRA adapters trained to answer "Alpha." and "Beta." and the base model, under
concurrent load from the real `openai` client: streamed and whole chat answers and embeddings for all three at
once, each equal to the same request sent alone (greedy), none from another adapter, none failing."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

openai = pytest.importorskip("openai")
torch = pytest.importorskip("torch")

from adapters_fixture import QUESTIONS, one_thread, train_word_adapter  # noqa: E402,F401 - one_thread is a fixture

NAME = "smol"
MODELS = (NAME, "alpha", "beta")
ASKED = QUESTIONS[:4]


@pytest.fixture(scope="module")
def server(smol_dir, tmp_path_factory, one_thread):
    from swiftall.pipelines.deploy import build_app, prepare_deploy_config
    from swiftall.serve.server import ServerThread

    alpha = train_word_adapter(smol_dir, "alpha", tmp_path_factory.mktemp("alpha"))
    beta = train_word_adapter(smol_dir, "beta", tmp_path_factory.mktemp("beta"))
    app, engine = build_app(prepare_deploy_config({
        "model": str(smol_dir), "served_model_name": NAME, "adapters": [f"alpha={alpha}", f"beta={beta}"],
        "max_new_tokens": 8}))
    with ServerThread(app) as s:
        s.engine = engine
        yield s
    engine.close()


def chat(client, model, question, stream):
    kwargs = dict(model=model, messages=[{"role": "user", "content": question}], max_tokens=6, temperature=0)
    if not stream:
        return client.chat.completions.create(**kwargs).choices[0].message.content
    chunks = client.chat.completions.create(stream=True, **kwargs)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def embed(client, model):
    return [d.embedding for d in client.embeddings.create(model=model, input=["embed me", "and me too"]).data]


@pytest.mark.slow  # two adapters trained (about 40 s each on a loaded 2-core machine), then 48 + 15 requests
def test_48_mixed_adapter_requests_at_16_concurrency_equal_each_alone(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0, timeout=600)
    alone = {(m, q): chat(client, m, q, stream=False) for m in MODELS for q in ASKED}
    vectors = {m: embed(client, m) for m in MODELS}
    assert {alone[("alpha", q)] for q in ASKED} == {"Alpha."} and {alone[("beta", q)] for q in ASKED} == {"Beta."}
    assert not {alone[(NAME, q)] for q in ASKED} & {"Alpha.", "Beta."}
    jobs = [(MODELS[i % 3], ASKED[(i // 3) % 4], ("stream", "whole", "embed")[(i // 12) % 3 if i % 2 else 0])
            for i in range(48)]

    def run(job):
        model, question, kind = job
        return embed(client, model) if kind == "embed" else chat(client, model, question, kind == "stream")

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(run, jobs))
    for (model, question, kind), got in zip(jobs, results):
        if kind == "embed":
            assert torch.allclose(torch.tensor(got), torch.tensor(vectors[model]), atol=1e-4), model
        else:
            assert got == alone[(model, question)], (model, question, kind)
    assert {k for _, _, k in jobs} == {"stream", "whole", "embed"}
    assert server.engine.scheduler.widest > 1 and server.engine.scheduler.busy() == 0


@pytest.fixture(scope="module")
def tiny_server(tiny_dir, one_thread):
    from swiftall.pipelines.deploy import build_app, prepare_deploy_config
    from swiftall.serve.server import ServerThread

    app, engine = build_app(prepare_deploy_config({"model": str(tiny_dir), "served_model_name": "tiny",
                                                   "max_batch_size": 16}))
    with ServerThread(app) as s:
        s.engine = engine
        yield s
    engine.close()


def send_load(url: str, indices: range, concurrency: int = 32) -> list[tuple[int, "int | None"]]:
    """Requests `indices` at `concurrency` at once: request i asks for 2 + i % 9 tokens after a prompt of 1 + i % 7
    words, even ones stream, and every fourth is dropped by its client after the first chunk. Returns (status,
    completion tokens of a whole answer or None) per request."""
    import asyncio

    httpx = pytest.importorskip("httpx")

    async def one(client, i):
        body = {"model": "tiny", "messages": [{"role": "user", "content": f"story {i} " * (1 + i % 7)}],
                "max_tokens": 2 + i % 9, "temperature": 0, "ignore_eos": True, "stream": i % 2 == 0}
        if not body["stream"]:
            r = await client.post("/v1/chat/completions", json=body)
            return r.status_code, r.json()["usage"]["completion_tokens"] if r.status_code == 200 else None
        async with client.stream("POST", "/v1/chat/completions", json=body) as r:
            chunks = 0
            async for line in r.aiter_lines():
                chunks += line.startswith("data: ")
                if i % 4 == 0 and chunks == 1:
                    break  # the client goes away mid-stream
            return r.status_code, None

    async def main():
        limit = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=600) as client:
            async def bounded(i):
                async with limit:
                    return await one(client, i)
            return await asyncio.gather(*(bounded(i) for i in indices))

    return asyncio.run(main())


def assert_served_and_drained(engine, indices: range, results: list) -> None:
    assert [s for s, _ in results if s >= 500] == []
    assert all(s == 200 for s, _ in results)
    assert all(n == 2 + i % 9 for i, (_, n) in zip(indices, results) if n is not None)
    for _ in range(100):  # a dropped stream's sequence ends at the scheduler's next step
        if engine.scheduler.busy() == 0:
            break
        time.sleep(0.1)
    assert engine.scheduler.busy() == 0 and engine.scheduler.cache is None and engine.scheduler.rows == []
    assert live_sequences() == 0, "Sequence objects outlive their requests (something still references them)"


def live_sequences() -> int:
    """The scheduler's Sequence objects still alive after a full garbage collection."""
    import gc

    from swiftall.infer.scheduler import Sequence

    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is Sequence)


def test_load_at_32_concurrency_with_cancelled_streams_has_no_5xx_and_leaves_nothing(tiny_server):
    """96 requests at 32 at once (mixed lengths, streamed and whole, every fourth dropped by its client after the
    first chunk): no 5xx, every whole answer as long as asked, and the scheduler empty afterwards."""
    indices = range(96)
    assert_served_and_drained(tiny_server.engine, indices, send_load(tiny_server.url, indices))


def resident_mib() -> float:
    """This process's RSS after a full garbage collection and, with glibc, after returning freed heap pages to the
    system (malloc_trim): what is still held, not what the allocator keeps cached."""
    import psutil

    from swiftall.tuners.quant import release_freed_memory

    release_freed_memory()
    return psutil.Process().memory_info().rss / 2**20


RSS_TOLERANCE_MIB = 16


@pytest.mark.slow  # 1,100 requests: 100-230 s on 2 cores at load 11-13
def test_1000_requests_at_32_concurrency_leave_no_sequence_and_no_memory_behind(tiny_server):
    """The issue's load test: 1,000 requests at 32 at once (mixed lengths, streamed and whole, a quarter dropped
    mid-stream by their clients) after a warm-up of 100 of the same mix. No 5xx, no sequence or KV cache left in the
    scheduler, and the server's process (it runs in this one) holds no more memory than after the warm-up, within
    RSS_TOLERANCE_MIB. 16 MiB over 1,000 requests is 16 KiB a request: a request that kept its sequence's KV rows
    (about 30 KiB here) or a logits row (192 KiB) would exceed it, while runs without a leak measured +1.2 to +6.6
    MiB (allocator fragmentation, interpreter caches); the warm-up pays for the one-time growth (thread pools,
    tokenizer and template caches, torch's first batch shapes). Smaller leaks of plain Python objects are what the
    count of live Sequence objects (assert_served_and_drained) is for."""
    engine = tiny_server.engine
    warm = range(10_000, 10_100)
    assert_served_and_drained(engine, warm, send_load(tiny_server.url, warm))
    baseline = resident_mib()
    indices = range(1000)
    results = send_load(tiny_server.url, indices)
    assert_served_and_drained(engine, indices, results)
    after = resident_mib()
    streamed = sum(1 for i in indices if i % 2 == 0)
    print(f"1,000 requests ({streamed} streamed, {sum(1 for i in indices if i % 4 == 0)} dropped mid-stream): "
          f"RSS {baseline:.1f} MiB after warm-up, {after:.1f} MiB after ({after - baseline:+.1f})")
    assert after - baseline < RSS_TOLERANCE_MIB, f"RSS grew {after - baseline:.1f} MiB over 1,000 requests"

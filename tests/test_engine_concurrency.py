"""The PyTorch engine under concurrent use: every forward runs on the scheduler's one thread (so peft's per-row
adapter hooks never interleave), answers for different adapters at once equal each alone, embeddings mixed in
change nothing, a request is encoded once, and cancelled streams leave nothing behind in the scheduler."""
from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

torch = pytest.importorskip("torch")

from adapters_fixture import one_thread, random_loras  # noqa: E402,F401 - one_thread is a fixture
from swiftall.infer import InferRequest, RequestConfig  # noqa: E402
from swiftall.infer.engine import BASE_MODEL  # noqa: E402
from swiftall.infer.pt import PtEngine  # noqa: E402

GREEDY = RequestConfig(max_new_tokens=10, temperature=0)
NAMES = ("a", "b", BASE_MODEL)
QUESTIONS = ["hi", "which adapter am I?", "count to ten", "a longer question about dragons and castles " * 2]


@pytest.fixture(scope="module")
def engine(tiny_dir, tmp_path_factory, one_thread):
    a, b = random_loras(tiny_dir, tmp_path_factory)
    e = PtEngine.from_pretrained(str(tiny_dir), adapters=[f"a={a}", f"b={b}"], max_batch_size=8)
    yield e
    e.close()


class ForwardWatch:
    """Wraps the model's forward: which threads ran it, and how many ran at the same moment."""

    def __init__(self, model):
        self.model, self.inner = model, model.forward
        self.threads, self.now, self.most, self.guard = set(), 0, 0, threading.Lock()

    def __call__(self, *args, **kwargs):
        with self.guard:
            self.now += 1
            self.most = max(self.most, self.now)
            self.threads.add(threading.current_thread().name)
        try:
            return self.inner(*args, **kwargs)
        finally:
            with self.guard:
                self.now -= 1

    def __enter__(self):
        self.model.forward = self
        return self

    def __exit__(self, *exc):
        del self.model.forward


def ask(name, q):
    return InferRequest(messages=[{"role": "user", "content": q}], adapter=name)


def test_mixed_adapters_streams_and_embeddings_at_once_equal_each_alone(engine):
    alone = {(n, q): engine.infer([ask(n, q)], GREEDY)[0].text for n in NAMES for q in QUESTIONS}
    vectors = {n: engine.embed(["embed me", "and me"], adapter=n) for n in NAMES}
    assert len({alone[(n, QUESTIONS[1])] for n in NAMES}) == 3  # the adapters really change the answer
    jobs = [(i % 3, NAMES[i % 3], QUESTIONS[i % 4]) for i in range(36)]

    def run(job):
        kind, name, q = job
        if kind == 0:
            return "".join(engine.stream(ask(name, q), GREEDY))
        if kind == 1:
            return engine.embed(["embed me", "and me"], adapter=name)
        return engine.infer([ask(name, q)], GREEDY)[0].text

    with ForwardWatch(engine.model) as watch, ThreadPoolExecutor(12) as pool:
        results = list(pool.map(run, jobs))
    for (kind, name, q), got in zip(jobs, results):
        if kind == 1:
            assert torch.allclose(torch.tensor(got), torch.tensor(vectors[name]), atol=1e-5), name
        else:
            assert got == alone[(name, q)], (name, q)
    assert watch.threads == {"swiftall-scheduler"} and watch.most == 1
    assert engine.scheduler.widest > 1 and engine.scheduler.busy() == 0


def test_cancelled_streams_at_32_concurrency_leave_no_sequence_behind(engine):
    """Many requests at once, some dropped by their reader after a few pieces (as a client that disconnects):
    the others finish normally and the scheduler is empty afterwards."""
    async def one(i):
        config = RequestConfig(max_new_tokens=3 + i % 6, temperature=0, ignore_eos=True)
        request = ask(NAMES[i % 3], QUESTIONS[i % 4])
        if i % 4 == 0:
            stream = engine.stream_async(request, config)
            async for event in stream:
                if event.text or event.completion_tokens:
                    break
            await stream.aclose()
            return None
        return await engine.infer_async(request, config)

    async def main():
        limit = asyncio.Semaphore(32)

        async def bounded(i):
            async with limit:
                return await one(i)
        return await asyncio.gather(*(bounded(i) for i in range(64)))

    results = asyncio.run(main())
    finished = [(i, r) for i, r in enumerate(results) if r is not None]
    assert len(finished) == 48
    assert all(r.completion_tokens == 3 + i % 6 and r.finish_reason == "length" for i, r in finished)
    assert engine.scheduler.busy() == 0 and not engine.scheduler.rows and engine.scheduler.cache is None


def test_a_request_is_encoded_once(engine, monkeypatch):
    """The server counts a request's tokens before running it; the template (media fetch and processor, for a
    multimodal one) runs once for both, and again only when the request changes."""
    calls = []
    inner = engine.template.encode_for_generation
    monkeypatch.setattr(engine.template, "encode_for_generation", lambda *a, **k: calls.append(1) or inner(*a, **k))
    request = ask("a", "count once")
    count = engine.count_prompt_tokens(request)
    answer = engine.infer([request], GREEDY)[0]
    assert len(calls) == 1 and answer.prompt_tokens == count
    request.messages = [{"role": "user", "content": "count again"}]
    engine.count_prompt_tokens(request)
    assert len(calls) == 2


@pytest.fixture(scope="module")
def qwen(smol_dir, tmp_path_factory, one_thread):
    """A tiny random Qwen2-VL engine and an image."""
    from fixtures_mm import BUILDERS, write_image

    root = tmp_path_factory.mktemp("qwen2_vl")
    engine = PtEngine.from_pretrained(str(BUILDERS["qwen2_vl"](smol_dir, root / "model")))
    yield engine, str(write_image(root / "cat.png"))
    engine.close()


def test_a_multimodal_request_fetches_and_processes_its_media_once(qwen, monkeypatch):
    from swiftall.templates import multimodal

    engine, image = qwen
    loads, processed = [], []
    load_media, process = multimodal.load_media, engine.template._process
    monkeypatch.setattr(multimodal, "load_media", lambda *a, **k: loads.append(1) or load_media(*a, **k))
    monkeypatch.setattr(engine.template, "_process", lambda *a, **k: processed.append(1) or process(*a, **k))
    request = InferRequest(messages=[{"role": "user", "content": "<image>What is it?"}], images=[image])
    count = engine.count_prompt_tokens(request)
    answer = engine.infer([request], RequestConfig(max_new_tokens=2, temperature=0))[0]
    assert answer.prompt_tokens == count and answer.completion_tokens >= 1
    assert (len(loads), len(processed)) == (1, 1)


def test_a_multimodal_answer_streams_token_by_token(qwen):
    """Pieces of a multimodal answer (decoded in the continuous batch) reach the reader as its tokens are sampled,
    not after the answer ends."""
    engine, image = qwen
    request = InferRequest(messages=[{"role": "user", "content": "<image>Describe it."}], images=[image])
    config = RequestConfig(max_new_tokens=12, temperature=0, ignore_eos=True)
    seen = []  # tokens generated so far when each event was sent
    answer, = engine.start(request, config, emit=lambda e: seen.append(len(answer.seq.generated)))
    assert answer.done.wait(60)
    whole = engine.infer([request], config)[0]
    assert answer.response().text == whole.text and whole.completion_tokens == 12
    assert len(seen) > 1 and seen[0] < 12  # the first piece went out while the answer was still decoding

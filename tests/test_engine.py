"""The PyTorch engine's continuous batching on a tiny random llama: answers equal plain `generate`, requests join
a running batch and leave it, per-request sampling, stop strings, log-probabilities, mixed LoRA adapters."""
from __future__ import annotations

import threading

import pytest

torch = pytest.importorskip("torch")

from swiftall.infer import InferRequest, RequestConfig  # noqa: E402
from swiftall.infer.engine import BASE_MODEL, QueueFullError  # noqa: E402
from swiftall.infer.pt import PtEngine  # noqa: E402

GREEDY = RequestConfig(max_new_tokens=12, temperature=0)


@pytest.fixture(scope="module")
def engine(tiny_dir):
    e = PtEngine.from_pretrained(str(tiny_dir), max_batch_size=8)
    yield e
    e.close()


def reference(engine, question: str, max_new: int, adapter_names=None) -> list[int]:
    """What plain transformers generate answers, one request alone, greedy."""
    ids = engine._encode(InferRequest.coerce(question)).input_ids
    kwargs = {"adapter_names": adapter_names} if adapter_names else {}
    out = engine.model.generate(torch.tensor([ids]), max_new_tokens=max_new, do_sample=False,
                                eos_token_id=sorted(engine.eos_ids()), **kwargs)
    return out[0, len(ids):].tolist()


def text_of(engine, ids: list[int]) -> str:
    kept = [t for t in ids if t not in engine.eos_ids()]
    return engine.tokenizer.decode(kept, skip_special_tokens=True)


def test_batched_answers_equal_generate_alone(engine):
    questions = ["hi", "What is the capital of France? Answer briefly.", "Tell me a long story about a dragon " * 3]
    answers = engine.infer(questions, GREEDY)
    for q, a in zip(questions, answers):
        ref = reference(engine, q, 12)
        assert a.text == text_of(engine, ref)
        assert a.completion_tokens == len(ref)
        assert a.prompt_tokens == len(engine._encode(InferRequest.coerce(q)).input_ids)
    assert engine.scheduler.widest >= 2  # they really ran in one batch


def test_requests_join_a_running_batch_and_finished_ones_leave(engine):
    long_cfg = RequestConfig(max_new_tokens=40, temperature=0, stop_token_ids=[])
    eos = engine.eos_ids()
    engine.scheduler.widest = 0
    pieces, got_some = [], threading.Event()

    def consume():
        for event in engine.stream_events("write forever", long_cfg):
            pieces.append(event)
            if len(pieces) == 3:
                got_some.set()

    thread = threading.Thread(target=consume)
    thread.start()
    assert got_some.wait(60)
    late = engine.infer(["late one", "late two"], RequestConfig(max_new_tokens=4, temperature=0))
    thread.join(60)
    assert engine.scheduler.widest == 3                       # the late requests joined the running one
    assert all(r.completion_tokens <= 4 for r in late)        # ... and left after 4 tokens
    final = pieces[-1]
    assert final.finish_reason in ("length", "stop")
    ref = reference(engine, "write forever", 40)
    assert "".join(p.text for p in pieces) == text_of(engine, ref)
    assert final.completion_tokens == len(ref)
    for q, r in zip(["late one", "late two"], late):
        assert r.text == text_of(engine, reference(engine, q, 4))
    assert not engine.scheduler.rows and eos


def test_requests_sent_together_to_an_idle_engine_prefill_as_one_batch(engine):
    """An evaluation sends its requests one by one from its own callers (each encodes its prompt first): the idle
    scheduler waits while they keep arriving, so the first one does not prefill alone and the rest a forward later."""
    import asyncio

    sizes, prefill = [], engine.scheduler._prefill

    def spy(seqs):
        sizes.append(len(seqs))
        return prefill(seqs)

    async def send(questions):
        return await asyncio.gather(*(engine.infer_async(InferRequest.coerce(q), GREEDY) for q in questions))

    questions = [f"Say the number {i}" for i in range(6)]
    engine.scheduler._prefill = spy
    try:
        answers = asyncio.run(send(questions))
    finally:
        del engine.scheduler._prefill
    assert sizes[0] == len(questions), sizes    # without the wait: [1, 5]
    for q, a in zip(questions, answers):
        assert a.text == text_of(engine, reference(engine, q, 12))


def test_seeded_sampling_is_reproducible_and_n_gives_distinct_choices(engine):
    cfg = RequestConfig(max_new_tokens=10, temperature=1.5, seed=7, n=3)
    a = engine.infer(["sample please"], cfg)[0]
    b = engine.infer(["sample please"], cfg)[0]
    assert [a.text] + [c.text for c in a.choices] == [b.text] + [c.text for c in b.choices]
    assert len(a.choices) == 2
    assert len({a.text, *[c.text for c in a.choices]}) > 1  # three draws of a random model differ


def test_stop_strings_cut_the_answer(engine):
    full = engine.infer(["stop test"], RequestConfig(max_new_tokens=16, temperature=0))[0].text
    assert len(full) >= 8, full
    stop = full[len(full) // 2: len(full) // 2 + 2]
    cut = engine.infer(["stop test"], RequestConfig(max_new_tokens=16, temperature=0, stop=[stop]))[0]
    assert cut.text == full[: full.index(stop)]
    assert cut.finish_reason == "stop"
    streamed = "".join(engine.stream("stop test", RequestConfig(max_new_tokens=16, temperature=0, stop=[stop])))
    assert streamed == cut.text


def test_logprobs_are_the_models_own(engine):
    r = engine.infer(["logprobs"], RequestConfig(max_new_tokens=5, temperature=0, logprobs=True, top_logprobs=3))[0]
    assert len(r.logprobs) == r.completion_tokens == 5
    ids = engine._encode(InferRequest.coerce("logprobs")).input_ids
    with torch.inference_mode():
        logits = engine.model(torch.tensor([ids])).logits[0, -1]
    expected = torch.log_softmax(logits.float(), -1).max().item()
    first = r.logprobs[0]
    assert first.logprob == pytest.approx(expected, abs=1e-4)
    assert len(first.top) == 3 and first.top[0][1] == pytest.approx(first.logprob, abs=1e-6)
    assert first.top[0][1] >= first.top[1][1] >= first.top[2][1]


def test_context_and_queue_limits(engine):
    with pytest.raises(Exception, match="context"):
        engine.infer([{"messages": [], "prompt": "word " * 600}], GREEDY)
    saved = engine.scheduler.max_queue
    engine.scheduler.max_queue = 0
    try:
        with pytest.raises(QueueFullError, match="retry"):
            engine.infer(["x"], GREEDY)
    finally:
        engine.scheduler.max_queue = saved


def test_async_and_streaming_apis(engine):
    import asyncio

    async def run():
        whole = await engine.infer_async("async question", GREEDY)
        events = [e async for e in engine.stream_async("async question", GREEDY)]
        return whole, events

    whole, events = asyncio.run(run())
    assert "".join(e.text for e in events) == whole.text
    assert events[-1].finish_reason == whole.finish_reason
    assert events[-1].completion_tokens == whole.completion_tokens


@pytest.fixture(scope="module")
def adapter_engine(tiny_dir, tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folders = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        base = AutoModelForCausalLM.from_pretrained(tiny_dir)
        peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"],
                                                     init_lora_weights=False))
        folder = tmp_path_factory.mktemp(f"lora{seed}")
        peft_model.save_pretrained(folder)
        folders.append(folder)
    e = PtEngine.from_pretrained(str(tiny_dir), adapters=[f"a={folders[0]}", f"b={folders[1]}"])
    yield e
    e.close()


def test_mixed_adapters_in_one_batch_match_each_alone(adapter_engine):
    e = adapter_engine
    q = "which adapter am I?"
    requests = [InferRequest(messages=[{"role": "user", "content": q}], adapter=name) for name in ("a", "b", BASE_MODEL)]
    answers = e.infer(requests, GREEDY)
    for name, answer in zip(("a", "b", BASE_MODEL), answers):
        assert answer.text == text_of(e, reference(e, q, 12, adapter_names=[name]))
    assert len({a.text for a in answers}) == 3  # the adapters really change the answer
    assert e.infer([q], GREEDY)[0].text == answers[0].text  # no adapter named: the first one
    with pytest.raises(Exception, match="unknown adapter 'c'"):
        e.infer([InferRequest(messages=[{"role": "user", "content": q}], adapter="c")], GREEDY)


def test_a_shared_prompt_prefix_is_computed_once_and_answers_equal_each_alone(engine):
    stem = "Repeat this word exactly once, with nothing else and no punctuation at all: "
    group = [stem + w for w in ("apple", "river", "stone")]
    prefix = engine.scheduler.prefix
    before = prefix.reused_tokens
    calls, shared = [], prefix.shared

    def spy(*args):
        calls.append(shared(*args))
        return calls[-1]

    prefix.shared = spy
    try:
        answers = engine.infer(group, GREEDY)
    finally:
        del prefix.shared
    kept = calls[-1][0]
    assert len(calls) == 1 and kept > 20
    assert prefix.reused_tokens - before == 2 * kept   # the group's shared part ran once, not 3 times
    assert prefix.entry is None   # dropped when the batch emptied: the weights may change before the next one
    for q, a in zip(group, answers):
        assert a.text == text_of(engine, reference(engine, q, 12))


def test_the_kept_prefix_belongs_to_its_adapter():
    from types import SimpleNamespace

    from swiftall.infer.prefix_cache import PrefixCache

    runs = []

    def forward(ids):
        runs.append(len(ids))
        return SimpleNamespace(layers=[SimpleNamespace(keys=torch.zeros(1, 2, len(ids), 4),
                                                       values=torch.ones(1, 2, len(ids), 4))])

    cache = PrefixCache()
    stem = list(range(30))
    got = cache.shared([stem + [100, 7], stem + [101]], "a", forward)
    assert got[0] == 30 and runs == [30] and got[1][0][1].shape == (1, 2, 30, 4)
    assert cache.shared([stem[:20] + [102]], "a", forward)[0] == 20 and runs == [30]   # a leading part, reused
    assert cache.shared([stem + [103]], "b", forward) is None      # another adapter never gets a's keys/values
    assert cache.shared([[5] * 40, [5] * 39 + [6]], "a", forward)[0] == 39 and runs == [30, 39]  # a new prefix


def test_closed_engine_refuses_new_requests(tiny_dir):
    from swiftall.infer.engine import ShuttingDownError

    e = PtEngine.from_pretrained(str(tiny_dir))
    first = e.infer(["before close"], RequestConfig(max_new_tokens=3, temperature=0))[0]
    assert first.completion_tokens > 0
    e.close()
    with pytest.raises(ShuttingDownError, match="shutting down"):
        e.infer(["after close"], GREEDY)

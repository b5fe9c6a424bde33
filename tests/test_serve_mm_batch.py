"""Multimodal requests in the continuous batch (tiny Qwen2-VL, whose M-RoPE shifts the positions after an image):
an image answer through the batch equals `model.generate`'s token for token (with its logprobs), a text request sent
while a long image answer decodes is not held behind it, and mixed text and image requests at concurrency equal each
alone."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

torch = pytest.importorskip("torch")

from adapters_fixture import one_thread  # noqa: E402,F401 - a fixture
from swiftall.infer import InferRequest, RequestConfig  # noqa: E402
from swiftall.infer.pt import PtEngine  # noqa: E402

GREEDY = RequestConfig(max_new_tokens=10, temperature=0, ignore_eos=True)


@pytest.fixture(scope="module")
def qwen_dir(smol_dir, tmp_path_factory):
    """A tiny Qwen2-VL whose weights are drawn wide enough (std 0.3) that its answers depend on the image, the
    question and the positions (at the default std 0.02 every answer repeats one token), and two images."""
    from fixtures_mm import BUILDERS, redraw_qwen2_vl, write_image

    root = tmp_path_factory.mktemp("qwen2_vl_batch")
    folder = redraw_qwen2_vl(BUILDERS["qwen2_vl"](smol_dir, root / "model"), 0.3)
    return folder, [str(write_image(root / "a.png", (56, 56))), str(write_image(root / "b.png", (84, 56), seed=3))]


@pytest.fixture(scope="module")
def qwen(qwen_dir, one_thread):
    folder, images = qwen_dir
    engine = PtEngine.from_pretrained(str(folder), max_batch_size=8)
    yield engine, images
    engine.close()


def image_request(image, question="What is this?"):
    return InferRequest(messages=[{"role": "user", "content": "<image>" + question}], images=[image])


def text_request(question):
    return InferRequest(messages=[{"role": "user", "content": question}])


def generate_greedy(engine, request, new_tokens):
    """The same request through a plain `model.generate` (greedy, one row): its tokens and each token's logprob."""
    encoded = engine._encode(request)
    extras = {k: v for k, v in encoded.extra.items() if k != "truncated_from"}
    ids = torch.tensor([encoded.input_ids])
    with torch.inference_mode():
        out = engine.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **extras, do_sample=False,
                                    max_new_tokens=new_tokens, min_new_tokens=new_tokens, output_scores=True,
                                    return_dict_in_generate=True, pad_token_id=engine.tokenizer.pad_token_id)
    tokens = out.sequences[0, ids.shape[1]:].tolist()
    logprobs = [torch.log_softmax(s[0].float(), -1)[t].item() for s, t in zip(out.scores, tokens)]
    return tokens, logprobs


def no_generate(engine, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a multimodal request ran model.generate instead of joining the batch")
    monkeypatch.setattr(engine.model, "generate", refuse)


def test_an_image_answer_through_the_batch_equals_generate_token_for_token(qwen, monkeypatch):
    engine, images = qwen
    requests = [image_request(images[0]), image_request(images[1]), image_request(images[0], "Describe it."),
                text_request("What is this?")]
    expected = [generate_greedy(engine, r, 12) for r in requests]
    assert len({tuple(t) for t, _ in expected}) == 4  # the image and the question change the answer
    no_generate(engine, monkeypatch)
    steps = engine.scheduler.steps
    config = RequestConfig(max_new_tokens=12, temperature=0, ignore_eos=True, logprobs=True)
    answers = engine.infer(requests, config)
    for answer, (tokens, logprobs) in zip(answers, expected):
        assert answer.token_ids == tokens
        assert [lp.logprob for lp in answer.logprobs] == pytest.approx(logprobs, abs=1e-4)
    assert engine.scheduler.steps - steps < 2 * 11  # decoded together (one after the other: 4 x 11 steps)


def test_a_wrong_position_shift_would_change_the_answer(qwen, monkeypatch):
    """The check above can fail: decoding an image answer without its M-RoPE shift gives other tokens."""
    from swiftall.infer import media_prefill

    engine, images = qwen
    right = engine.infer([image_request(images[0])], GREEDY)[0].token_ids
    monkeypatch.setattr(media_prefill, "read_delta", lambda holders: 0)
    assert engine.infer([image_request(images[0])], GREEDY)[0].token_ids != right


def test_a_text_request_sent_while_a_long_image_answer_decodes_finishes_first(qwen, monkeypatch):
    engine, images = qwen
    no_generate(engine, monkeypatch)
    long_config = RequestConfig(max_new_tokens=400, temperature=0, ignore_eos=True)
    first = threading.Event()
    long, = engine.start(image_request(images[1]), long_config,
                         emit=lambda e: first.set() if getattr(e, "completion_tokens", 0) or e.text else None)
    assert first.wait(60)  # the image answer is decoding
    short, = engine.start(text_request("hi"), RequestConfig(max_new_tokens=3, temperature=0, ignore_eos=True))
    assert short.done.wait(60)
    assert not long.done.is_set() and len(long.seq.generated) < 400
    assert long.done.wait(120) and len(long.seq.generated) == 400
    assert engine.scheduler.widest >= 2  # the text request decoded beside the image answer


def test_mixed_text_and_image_requests_at_concurrency_equal_each_alone(qwen, monkeypatch):
    engine, images = qwen
    requests = [image_request(images[0]), image_request(images[1]), image_request(images[1], "Describe it."),
                text_request("hi"), text_request("count to ten"), text_request("what is a cat?")]
    alone = [engine.infer([r], GREEDY)[0].token_ids for r in requests]
    no_generate(engine, monkeypatch)
    jobs = [(i % len(requests), i % 3 == 0) for i in range(18)]

    def run(job):
        index, streamed = job
        request = requests[index]
        if streamed:
            text = "".join(engine.stream(request, GREEDY))
            return engine.tokenizer(text, add_special_tokens=False)["input_ids"], text
        return engine.infer([request], GREEDY)[0].token_ids, None

    widest = engine.scheduler.widest = 0
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, jobs))
    for (index, streamed), (got, text) in zip(jobs, results):
        if streamed:
            assert text == engine.tokenizer.decode(alone[index]), index
        else:
            assert got == alone[index], index
    assert engine.scheduler.widest > max(widest, 1) and engine.scheduler.busy() == 0


def test_a_family_that_cannot_join_the_batch_still_lets_text_requests_through(qwen, monkeypatch):
    """The fallback (`generate` for families whose decode steps need their media, e.g. mllama's cross-attention):
    text rows take a step at each of generate's tokens, so a short text request is not held behind a long answer."""
    engine, images = qwen
    monkeypatch.setattr(engine, "media_fallback", "as if its decode steps needed the image")
    calls, inner = [], engine.model.generate
    monkeypatch.setattr(engine.model, "generate", lambda *a, **k: calls.append(1) or inner(*a, **k))
    long, = engine.start(image_request(images[0]), RequestConfig(max_new_tokens=300, temperature=0, ignore_eos=True))
    while not long.seq.generated and not long.done.is_set():
        long.done.wait(0.01)
    short, = engine.start(text_request("hi"), RequestConfig(max_new_tokens=3, temperature=0, ignore_eos=True))
    assert short.done.wait(60) and short.completion_tokens == 3
    assert not long.done.is_set() and len(long.seq.generated) < 300
    assert long.done.wait(120) and long.completion_tokens == 300 and calls == [1]
    assert engine.infer([image_request(images[0])], GREEDY)[0].token_ids == long.seq.generated[:10]


def test_image_chats_through_the_openai_api_at_concurrency_stream_with_logprobs_and_equal_each_alone(qwen, qwen_dir):
    """`deploy` on the same model: 8 image chats (data: URLs) and 4 text chats at once, half streamed, all with
    logprobs: every answer equals the engine's answer to it alone, and each streamed token brings its logprob."""
    import base64

    openai = pytest.importorskip("openai")
    from swiftall.pipelines.deploy import build_app, prepare_deploy_config
    from swiftall.serve.server import ServerThread

    engine, images = qwen
    urls = ["data:image/png;base64," + base64.b64encode(open(p, "rb").read()).decode() for p in images]
    asks = [(i % 2, ["What is this?", "Describe it."][i // 2 % 2]) for i in range(8)] + \
           [(None, q) for q in ("hi", "count to ten", "what is a cat?", "hello")]
    config = RequestConfig(max_new_tokens=8, temperature=0)
    alone = [engine.infer([image_request(images[k], q) if k is not None else text_request(q)], config)[0].text
             for k, q in asks]

    def chat(job):
        i, (k, q) = job
        content = [{"type": "image_url", "image_url": {"url": urls[k]}}, {"type": "text", "text": q}] if k is not None \
            else q
        kwargs = dict(model="vl", messages=[{"role": "user", "content": content}], max_tokens=8, temperature=0,
                      logprobs=True, top_logprobs=2)
        if i % 2:
            chunks = [c for c in client.chat.completions.create(stream=True, **kwargs) if c.choices]
            tokens = [t for c in chunks if c.choices[0].logprobs for t in c.choices[0].logprobs.content]
            return "".join(c.choices[0].delta.content or "" for c in chunks), tokens
        choice = client.chat.completions.create(**kwargs).choices[0]
        return choice.message.content, choice.logprobs.content

    app, served = build_app(prepare_deploy_config({"model": str(qwen_dir[0]), "served_model_name": "vl",
                                                   "max_batch_size": 16}))
    with ServerThread(app) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0, timeout=120)
        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(chat, enumerate(asks)))
    served.close()
    for want, (text, logprobs) in zip(alone, results):
        assert text == want
        assert len(logprobs) == 8 and all(t.logprob <= 0 and len(t.top_logprobs) == 2 for t in logprobs)
    assert served.scheduler.widest > 1


def test_a_request_whose_media_fail_ends_alone(qwen):
    """A multimodal prefill that raises (here: pixel values that do not fit the prompt's image tokens) ends that
    request with its error; the text answer decoding beside it is not touched."""
    from swiftall.infer.scheduler import Sequence
    from swiftall.infer.sampling import SamplingParams

    engine, images = qwen
    config = RequestConfig(max_new_tokens=40, temperature=0, ignore_eos=True)
    want = engine.infer([text_request("count to ten")], config)[0].token_ids
    text, = engine.start(text_request("count to ten"), config)
    while not text.seq.generated:
        text.done.wait(0.01)
    good = engine._encode(image_request(images[0]))
    media = {k: v for k, v in good.extra.items() if k != "truncated_from"}
    media["pixel_values"] = media["pixel_values"][: len(media["pixel_values"]) // 2]
    ended = []
    bad = Sequence(list(good.input_ids), SamplingParams(), 5, set(), lambda *a: False,
                   lambda seq, error: ended.append(error), media=media)
    engine.scheduler.submit([bad])
    assert text.done.wait(60) and text.seq.generated == want
    assert bad.finish_reason == "error" and len(ended) == 1 and ended[0] is not None

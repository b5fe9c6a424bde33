"""`--infer_backend llama_cpp`: a GGUF file exported by `swiftall export` served by llama.cpp through the Engine
interface -- the GGUF's chat template, streaming, stop strings, logprobs, requests served one at a time in arrival
order -- and through infer, eval and deploy (the real `openai` client)."""
from __future__ import annotations

import json
import threading
import time
import types
from types import SimpleNamespace as NS

import pytest

from swiftall.export.gguf import converter_available, llama_cpp_available
from swiftall.infer import RequestConfig
from swiftall.infer.engine import QueueFullError, ShuttingDownError
from swiftall.utils.errors import ConfigError

pytestmark = pytest.mark.skipif(not (llama_cpp_available() and converter_available()),
                                reason="llama-cpp-python or llama.cpp's converter is not installed "
                                       "(pip install llama-cpp-python 'swiftall[export]')")
GREEDY = RequestConfig(max_new_tokens=16, temperature=0, ignore_eos=True)
Q = "What is the capital of France?"


def export_gguf(model, folder, kind="f16"):
    from swiftall.pipelines.export import export_main

    out = export_main(NS(model=str(model), quant_method="gguf", gguf_type=kind, export_check=False,
                         output_dir=str(folder)))
    return out / f"model-{kind}.gguf"


@pytest.fixture(scope="module")
def tiny_gguf(tiny_dir, tmp_path_factory):
    return export_gguf(tiny_dir, tmp_path_factory.mktemp("lc") / "tiny-f16")


@pytest.fixture(scope="module")
def engine(tiny_gguf):
    from swiftall.infer.llama_cpp import LlamaCppEngine

    with LlamaCppEngine(str(tiny_gguf), n_threads=1) as e:
        yield e


def test_prompt_is_the_ggufs_chat_template_and_matches_transformers(engine, tiny_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": Q}]
    expected = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert engine.prompt_ids({"messages": messages}) == tokenizer(expected, add_special_tokens=False)["input_ids"]
    assert engine.count_prompt_tokens(Q) == len(tokenizer(tokenizer.apply_chat_template(
        [{"role": "user", "content": Q}], add_generation_prompt=True, tokenize=False), add_special_tokens=False)
        ["input_ids"])


def test_stream_equals_whole_answer_and_stop_strings_cut_it(engine):
    whole = engine.infer(Q, GREEDY)
    assert whole.completion_tokens == 16 and whole.finish_reason == "length" and whole.text
    pieces = list(engine.stream(Q, GREEDY))
    assert len(pieces) > 1 and "".join(pieces) == whole.text
    middle = len(whole.text) // 2
    stop = whole.text[middle:middle + 2]
    cut = engine.infer(Q, RequestConfig(max_new_tokens=16, temperature=0, ignore_eos=True, stop=[stop]))
    assert cut.finish_reason == "stop" and cut.text == whole.text[:whole.text.find(stop)]
    streamed = "".join(engine.stream(Q, RequestConfig(max_new_tokens=16, temperature=0, ignore_eos=True,
                                                      stop=[stop])))
    assert streamed == cut.text   # text held back while it could start the stop string is never shown


def test_logprobs_are_those_of_the_model(engine, tiny_dir):
    import torch
    from transformers import AutoModelForCausalLM

    answer = engine.infer(Q, RequestConfig(max_new_tokens=4, temperature=0, ignore_eos=True, logprobs=True,
                                           top_logprobs=3))
    assert len(answer.logprobs) == 4 == len(answer.token_ids)
    for entry in answer.logprobs:
        assert len(entry.top) == 3 and entry.top[0] == (entry.token, entry.logprob)   # greedy took the best
        assert entry.top[0][1] >= entry.top[1][1] >= entry.top[2][1] and entry.logprob <= 0
    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32)
    ids = engine.prompt_ids(Q) + answer.token_ids[:1]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    assert abs(logp[-2, answer.token_ids[0]].item() - answer.logprobs[0].logprob) < 0.02   # f16 weights
    assert abs(logp[-1, answer.token_ids[1]].item() - answer.logprobs[1].logprob) < 0.02


def test_n_answers_and_seeds(engine):
    config = RequestConfig(max_new_tokens=8, temperature=1.0, seed=7, n=2, ignore_eos=True)
    first, again = engine.infer(Q, config), engine.infer(Q, config)
    assert [first.text, first.choices[0].text] == [again.text, again.choices[0].text]   # seeded: reproducible
    assert len(first.choices) == 1 and first.token_ids != first.choices[0].token_ids


def test_concurrent_requests_run_one_at_a_time_in_arrival_order(engine):
    engine.lock.max_queue = 2
    log, started, all_queued = [], threading.Event(), threading.Event()

    def ask(name):
        for _ in engine.stream_events(Q, RequestConfig(max_new_tokens=12, temperature=0, ignore_eos=True)):
            log.append(name)
            if name == "A":
                started.set()
                all_queued.wait(30)   # A holds the model while B and C queue up

    threads = {n: threading.Thread(target=ask, args=(n,)) for n in "ABC"}
    threads["A"].start()
    assert started.wait(30)
    for name, queued in (("B", 2), ("C", 3)):
        threads[name].start()
        deadline = time.time() + 30
        while engine.lock.waiting() < queued and time.time() < deadline:
            time.sleep(0.01)
    with pytest.raises(QueueFullError, match="busy and 2 requests are waiting"):
        engine.infer(Q, GREEDY)
    all_queued.set()
    for t in threads.values():
        t.join(60)
    engine.lock.max_queue = 256
    order = [n for i, n in enumerate(log) if i == 0 or log[i - 1] != n]
    assert order == ["A", "B", "C"], log   # each answered whole, first come first served


def test_bad_inputs_are_clear(engine, tiny_dir, tmp_path):
    from swiftall.infer.llama_cpp import LlamaCppEngine

    with pytest.raises(ConfigError, match="text-only GGUF"):
        engine.infer({"messages": [{"role": "user", "content": "<image>x"}], "images": ["cat.png"]})
    with pytest.raises(ConfigError, match="needs one .gguf model file in the folder, found none"):
        LlamaCppEngine(str(tiny_dir))
    with pytest.raises(ConfigError, match="--gguf_lora true"):
        LlamaCppEngine(str(engine.path), adapters=[str(tmp_path)])
    with pytest.raises(ConfigError, match="the context holds"):
        engine.infer("word " * 600, GREEDY)   # the tiny model's context: 512


def test_infer_and_eval_pipelines_take_the_backend(tiny_gguf, engine, write_jsonl, tmp_path):
    from swiftall.pipelines.eval import eval_main
    from swiftall.pipelines.infer import infer_main

    expected = engine.infer(Q, RequestConfig(max_new_tokens=6, temperature=0)).text
    assert infer_main({"model": str(tiny_gguf.parent), "infer_backend": "llama_cpp", "query": Q,
                       "max_new_tokens": 6, "temperature": 0}) == expected
    qa = write_jsonl([{"query": Q, "response": "Paris"}], "qa.jsonl")
    report = eval_main(types.SimpleNamespace(model=str(tiny_gguf), infer_backend="llama_cpp", eval_dataset=str(qa),
                                             eval_output_dir=str(tmp_path), eval_progress=False,
                                             eval_generation_config={"max_tokens": 6}))
    assert report["datasets"]["qa"]["n"] == 1 and report["config"]["infer_backend"] == "llama_cpp"
    rows = [json.loads(x) for x in (tmp_path.glob("*/predictions/qa.jsonl").__next__()).read_text().splitlines()]
    assert rows[0]["raw"] == expected and rows[0]["completion_tokens"] == 6


def test_deploy_serves_the_openai_client_chat_and_stream(tiny_gguf, engine):
    openai = pytest.importorskip("openai")
    from swiftall.pipelines.deploy import build_app, prepare_deploy_config
    from swiftall.serve.server import ServerThread

    app, served = build_app(prepare_deploy_config({"model": str(tiny_gguf), "infer_backend": "llama_cpp",
                                                   "served_model_name": "g", "max_new_tokens": 16}))
    expected = engine.infer(Q, RequestConfig(max_new_tokens=10, temperature=0))
    with ServerThread(app) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0, timeout=60)
        assert [m.id for m in client.models.list().data] == ["g"]
        ask = dict(model="g", messages=[{"role": "user", "content": Q}], max_tokens=10, temperature=0)
        whole = client.chat.completions.create(**ask, logprobs=True, top_logprobs=2)
        assert whole.choices[0].message.content == expected.text
        assert whole.usage.prompt_tokens == expected.prompt_tokens
        assert whole.usage.completion_tokens == expected.completion_tokens
        assert len(whole.choices[0].logprobs.content) == expected.completion_tokens
        chunks = list(client.chat.completions.create(**ask, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == expected.text and chunks[-1].choices[0].finish_reason == expected.finish_reason
    served.close()
    with pytest.raises(ShuttingDownError, match="closed"):
        served.infer(Q)


@pytest.mark.slow
def test_f16_gguf_of_the_embedded_model_answers_like_the_pt_engine(tmp_path):
    from swiftall.infer.llama_cpp import LlamaCppEngine
    from swiftall.infer.pt import PtEngine

    gguf = export_gguf("smollm2-135m-instruct", tmp_path / "smol-f16")
    config = RequestConfig(max_new_tokens=20, temperature=0)
    with PtEngine.from_pretrained("smollm2-135m-instruct") as pt:
        reference = pt.infer(Q, config)
    with LlamaCppEngine(str(gguf)) as lc:
        answer = lc.infer(Q, config)
    assert "Paris" in answer.text and answer.text == reference.text
    assert answer.prompt_tokens == reference.prompt_tokens

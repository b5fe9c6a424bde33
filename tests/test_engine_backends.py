"""vLLM/SGLang/LMDeploy translation, tested with their real packages absent; HTTP client body/answer shapes."""
from __future__ import annotations

import importlib.util
from types import SimpleNamespace as NS

import pytest

from swiftall.infer import InferRequest, RequestConfig
from swiftall.infer.backends import (from_lmdeploy_output, from_sglang_output, from_vllm_output,
                                     lmdeploy_gen_kwargs, sglang_sampling_params, vllm_sampling_kwargs)
from swiftall.infer.client import chat_body, parse_response
from swiftall.utils.errors import MissingDependencyError

CFG = RequestConfig(max_new_tokens=32, temperature=0.7, top_p=0.9, top_k=20, repetition_penalty=1.1,
                    stop=["\n\n"], seed=3, n=2, logprobs=True, top_logprobs=2)


def test_sampling_settings_in_each_backends_names():
    assert vllm_sampling_kwargs(CFG) == {"max_tokens": 32, "n": 2, "temperature": 0.7, "top_p": 0.9, "top_k": 20,
                                         "repetition_penalty": 1.1, "stop": ["\n\n"], "seed": 3, "logprobs": 2}
    assert sglang_sampling_params(CFG) == {"max_new_tokens": 32, "n": 2, "temperature": 0.7, "top_p": 0.9,
                                           "top_k": 20, "repetition_penalty": 1.1, "stop": ["\n\n"]}
    assert lmdeploy_gen_kwargs(CFG) == {"max_new_tokens": 32, "n": 2, "temperature": 0.7, "top_p": 0.9, "top_k": 20,
                                        "repetition_penalty": 1.1, "stop_words": ["\n\n"], "random_seed": 3,
                                        "logprobs": 2}
    greedy = vllm_sampling_kwargs(RequestConfig(max_new_tokens=5, temperature=0))
    assert greedy == {"max_tokens": 5, "n": 1, "temperature": 0}  # unset fields keep the backend's defaults


def test_vllm_outputs_become_responses():
    lp = lambda v, rank, tok: NS(logprob=v, rank=rank, decoded_token=tok)  # noqa: E731 (vllm.sequence.Logprob)
    output = NS(prompt_token_ids=[1, 2, 3], outputs=[
        NS(text="Hi!", token_ids=[7, 8], finish_reason="stop",
           logprobs=[{7: lp(-0.1, 1, "Hi"), 9: lp(-2.5, 2, "Hey")}, {8: lp(-0.3, 1, "!"), 4: lp(-1.5, 2, ".")}]),
        NS(text="Hello there", token_ids=[5, 6, 6], finish_reason="length", logprobs=None)])
    r = from_vllm_output(output)
    assert (r.text, r.finish_reason, r.prompt_tokens, r.completion_tokens) == ("Hi!", "stop", 3, 2)
    assert [(t.token, t.logprob) for t in r.logprobs] == [("Hi", -0.1), ("!", -0.3)]
    assert r.logprobs[0].top == [("Hi", -0.1), ("Hey", -2.5)]
    assert [(c.text, c.finish_reason, c.completion_tokens) for c in r.choices] == [("Hello there", "length", 3)]


def test_sglang_and_lmdeploy_outputs_become_responses():
    r = from_sglang_output({"text": "Paris", "meta_info": {"finish_reason": {"type": "length", "length": 4},
                                                           "prompt_tokens": 12, "completion_tokens": 4}})
    assert (r.text, r.finish_reason, r.prompt_tokens, r.completion_tokens) == ("Paris", "length", 12, 4)
    many = from_sglang_output([{"text": "a", "meta_info": {"finish_reason": {"type": "stop"}}},
                               {"text": "b", "meta_info": {"finish_reason": {"type": "stop"}}}])
    assert [many.text] + [c.text for c in many.choices] == ["a", "b"]
    r = from_lmdeploy_output(NS(text="ok", finish_reason="stop", input_token_len=9, generate_token_len=2))
    assert (r.text, r.finish_reason, r.prompt_tokens, r.completion_tokens) == ("ok", "stop", 9, 2)


@pytest.mark.parametrize("backend, cls", [("vllm", "VllmEngine"), ("sglang", "SglangEngine"),
                                          ("lmdeploy", "LmdeployEngine")])
def test_missing_backend_names_the_extra(backend, cls):
    if importlib.util.find_spec(backend) is not None:
        pytest.skip(f"{backend} is installed here")
    from swiftall.infer import backends

    with pytest.raises(MissingDependencyError, match=rf"pip install 'swiftall\[{backend}\]'"):
        getattr(backends, cls)("/nonexistent", template=None)


def test_cli_infer_backend_missing_is_one_clean_line(capsys, tiny_dir):
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    from swiftall.cli.main import main

    assert main(["infer", "--model", str(tiny_dir), "--infer_backend", "vllm"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("swiftall infer: error: 'vllm' is needed for --infer_backend vllm")


def test_http_client_body_and_answer_shapes():
    req = InferRequest(messages=[{"role": "user", "content": "look"}], adapter="a", images=["data:image/png;base64,AA"])
    body = chat_body(req, CFG, "base", stream=True)
    assert body["model"] == "a" and body["max_tokens"] == 32 and body["stop"] == ["\n\n"]
    assert body["logprobs"] is True and body["top_logprobs"] == 2 and body["stream_options"] == {"include_usage": True}
    assert body["messages"][0]["content"][1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}
    completion = chat_body(InferRequest(messages=[], prompt="Once"), RequestConfig(max_new_tokens=4), "base")
    assert completion["prompt"] == "Once" and "messages" not in completion
    r = parse_response({"choices": [{"index": 1, "message": {"content": "B"}, "finish_reason": "length"},
                                    {"index": 0, "message": {"content": "A"}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 7}})
    assert (r.text, r.finish_reason, r.prompt_tokens) == ("A", "stop", 5) and r.choices[0].text == "B"

"""vLLM, SGLang and LMDeploy engines against stand-ins shaped like their documented async APIs (the packages cannot
be installed here). The stand-ins take exactly the documented keyword names (a wrong name is a TypeError), stream
token by token with a pause between tokens, and record what they were given: prompts, sampling settings, media,
LoRA requests, engine limits, aborts. Checked: true streaming, concurrency, logprobs, media in each backend's
multimodal format, a LoRA adapter per request with the limits of the adapters given, and cancellation."""
from __future__ import annotations

import asyncio
import json
import sys
import types
from types import SimpleNamespace as NS

import pytest

from swiftall.infer import InferRequest, RequestConfig
from swiftall.infer.engine import BASE_MODEL
from swiftall.utils.errors import ConfigError

WORDS = {None: ["base", " says", " hi"], "alpha": ["alpha", " says", " hi"], "beta": ["beta", " says", " hi"]}
SPEED = 0.01  # seconds between two tokens
VOCAB = {1000 + k: word for k, word in enumerate(sorted({w for ws in WORDS.values() for w in ws} | {"x"}))}
IDS = {word: i for i, word in VOCAB.items()}


class Tokenizer:
    """Characters as token ids (below 1000), and the answers' words (1000 and up)."""

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids):
        return "".join(VOCAB.get(i) or chr(i) for i in ids)


class Template:
    """swiftall's template interface, as the backends use it."""

    def __init__(self):
        self.tokenizer = Tokenizer()
        self.media_options = NS(sampling_rate=16000)

    def encode_prompt(self, messages, tools=None):
        return self.tokenizer("|".join(m["content"] for m in messages) + ">")["input_ids"]

    def prepare(self, messages, media):
        from PIL import Image

        loaded = {k: [Image.new("RGB", (2, 2)) if k != "audios" else [0.0] * 4 for _ in v] for k, v in media.items()}
        if "videos" in loaded:
            loaded["videos"] = [[Image.new("RGB", (2, 2))] * 3 for _ in media["videos"]]
        return messages, loaded

    def render(self, messages, add_generation_prompt=False, tools=None):
        return "|".join(m["content"] for m in messages).replace("<image>", "<|image_pad|>") + ">"


class Recorder:
    def __init__(self):
        self.calls, self.aborted, self.active, self.most_active, self.produced = [], [], 0, 0, 0

    async def tokens(self, words):
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            for j, word in enumerate(words):
                await asyncio.sleep(SPEED)
                self.produced += 1
                yield j, word
        finally:
            self.active -= 1


# ---- vLLM ----------------------------------------------------------------------------------------------
def fake_vllm(rec):
    vllm = types.ModuleType("vllm")

    class SamplingParams:
        def __init__(self, n=1, temperature=1.0, top_p=1.0, top_k=-1, repetition_penalty=1.0, seed=None, stop=None,
                     stop_token_ids=None, ignore_eos=False, max_tokens=16, logprobs=None, prompt_logprobs=None):
            self.n, self.logprobs, self.max_tokens = n, logprobs, max_tokens

    class AsyncEngineArgs:
        def __init__(self, model, max_num_seqs=256, max_model_len=None, enable_lora=False, max_loras=1,
                     max_lora_rank=16, max_cpu_loras=None):
            rec.engine_args = dict(model=model, enable_lora=enable_lora, max_loras=max_loras,
                                   max_lora_rank=max_lora_rank, max_num_seqs=max_num_seqs)

    class AsyncLLMEngine:
        @classmethod
        def from_engine_args(cls, engine_args):
            return cls()

        async def get_model_config(self):
            return NS(max_model_len=2048)

        async def generate(self, prompt, sampling_params, request_id, lora_request=None, trace_headers=None,
                           priority=0):
            rec.calls.append(dict(prompt=prompt, params=sampling_params, lora=lora_request, id=request_id))
            words = WORDS[lora_request.lora_name if lora_request else None]
            outs = [NS(index=i, text="", token_ids=[], logprobs=[] if sampling_params.logprobs is not None else None,
                       finish_reason=None) for i in range(sampling_params.n)]
            async for j, word in rec.tokens(words):
                for out in outs:
                    out.text += word
                    out.token_ids = [*out.token_ids, IDS[word]]
                    if out.logprobs is not None:
                        out.logprobs = [*out.logprobs, {IDS[word]: NS(logprob=-0.5, rank=1, decoded_token=word),
                                                        IDS['x']: NS(logprob=-2.0, rank=2, decoded_token="x")}]
                    out.finish_reason = "stop" if j == len(words) - 1 else None
                yield NS(outputs=[NS(**vars(o)) for o in outs], prompt_token_ids=prompt["prompt_token_ids"],
                         finished=j == len(words) - 1)

        async def abort(self, request_id):
            rec.aborted.append(request_id)

    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda lora_name, lora_int_id, lora_path: NS(lora_name=lora_name, lora_int_id=lora_int_id,
                                                                        lora_path=lora_path)
    vllm.SamplingParams, vllm.AsyncEngineArgs, vllm.AsyncLLMEngine, vllm.lora = (SamplingParams, AsyncEngineArgs,
                                                                                 AsyncLLMEngine, lora)
    lora.request = request
    return {"vllm": vllm, "vllm.lora": lora, "vllm.lora.request": request}


@pytest.fixture
def adapters(tmp_path):
    out = []
    for name, rank in (("alpha", 4), ("beta", 12)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "adapter_config.json").write_text(json.dumps({"r": rank, "target_modules": ["q_proj", "v_proj"],
                                                                "peft_type": "LORA"}))
        out.append(f"{name}={folder}")
    return out


def make(backend, monkeypatch, adapters=()):
    rec = Recorder()
    modules = {"vllm": fake_vllm, "sglang": fake_sglang, "lmdeploy": fake_lmdeploy}[backend](rec)
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    from swiftall.infer.backends import BACKENDS

    engine = BACKENDS[backend]("/models/m", Template(), adapters=adapters, max_batch_size=8,
                               default_config=RequestConfig(max_new_tokens=8))
    return engine, rec


BACKEND_NAMES = ["vllm", "sglang", "lmdeploy"]


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_streams_token_by_token(backend, monkeypatch):
    engine, rec = make(backend, monkeypatch)
    try:
        events = engine.stream_events("Hi")
        first = next(events)
        assert first.text == "base" and rec.produced < 3  # handed over before the answer was finished
        rest = list(events)
        assert "".join(e.text for e in [first, *rest]) == "base says hi"
        assert rest[-1].finish_reason == "stop" and rest[-1].completion_tokens == 3
    finally:
        engine.close()


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_requests_run_concurrently_with_logprobs(backend, monkeypatch):
    engine, rec = make(backend, monkeypatch)
    try:
        config = RequestConfig(max_new_tokens=8, logprobs=True, top_logprobs=1, temperature=0)
        answers = engine.infer([f"Question {i}" for i in range(6)], config)
        assert [a.text for a in answers] == ["base says hi"] * 6
        assert rec.most_active == 6
        assert [lp.token for lp in answers[0].logprobs] == ["base", " says", " hi"]
        assert answers[0].logprobs[0].logprob == pytest.approx(-0.5)
        assert answers[0].logprobs[0].top[0] == ("base", pytest.approx(-0.5))
    finally:
        engine.close()


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_lora_per_request(backend, monkeypatch, adapters):
    engine, rec = make(backend, monkeypatch, adapters)
    try:
        asked = [InferRequest(messages=[{"role": "user", "content": "Hi"}], adapter=a)
                 for a in ("alpha", "beta", BASE_MODEL, None)]
        assert [a.text.split()[0] for a in engine.infer(asked)] == ["alpha", "beta", "base", "alpha"]
        with pytest.raises(ConfigError, match="unknown adapter 'gamma'"):
            engine.infer([InferRequest(messages=[{"role": "user", "content": "Hi"}], adapter="gamma")])
    finally:
        engine.close()


def test_vllm_limits_prompt_and_lora_requests(monkeypatch, adapters):
    engine, rec = make("vllm", monkeypatch, adapters)
    try:
        engine.infer([InferRequest(messages=[{"role": "user", "content": "Hi"}], adapter="beta")])
        assert rec.engine_args == {"model": "/models/m", "enable_lora": True, "max_loras": 2, "max_lora_rank": 16,
                                   "max_num_seqs": 8}  # rank 12 rounded up to one vLLM accepts
        call = rec.calls[0]
        assert call["prompt"] == {"prompt_token_ids": Template().encode_prompt([{"content": "Hi"}])}
        assert (call["lora"].lora_name, call["lora"].lora_int_id) == ("beta", 2)
        assert call["lora"].lora_path.endswith("beta") and engine.max_model_len == 2048
    finally:
        engine.close()


def test_vllm_media_and_n(monkeypatch):
    import numpy as np
    from PIL import Image

    engine, rec = make("vllm", monkeypatch)
    try:
        request = InferRequest(messages=[{"role": "user", "content": "<image>What? <video><audio>"}],
                               images=["a.png"], videos=["v.mp4"], audios=["a.wav"])
        answer = engine.infer([request], RequestConfig(max_new_tokens=4, n=2))[0]
        assert answer.text == "base says hi" and [c.text for c in answer.choices] == ["base says hi"]
        prompt = rec.calls[0]["prompt"]
        assert Tokenizer().decode(prompt["prompt_token_ids"]) == "<|image_pad|>What? <video><audio>>"
        data = prompt["multi_modal_data"]
        assert isinstance(data["image"][0], Image.Image)
        assert isinstance(data["video"][0], np.ndarray) and data["video"][0].shape == (3, 2, 2, 3)
        assert data["audio"][0][1] == 16000 and len(data["audio"][0][0]) == 4
    finally:
        engine.close()


def test_stopping_early_aborts_in_the_engine(monkeypatch):
    engine, rec = make("vllm", monkeypatch)
    try:
        events = engine.stream_events("Hi")
        next(events)
        events.close()
        for _ in range(100):
            if rec.aborted:
                break
            asyncio.run(asyncio.sleep(0.01))
        assert rec.aborted == [rec.calls[0]["id"]]
    finally:
        engine.close()


async def consume(engine, request):
    return [e async for e in engine.stream_async(request)]


def test_async_stream_from_another_loop(monkeypatch):
    """The server's event loop reads events produced on the engine's own loop."""
    engine, _ = make("sglang", monkeypatch)
    try:
        events = asyncio.run(consume(engine, "Hi"))
        assert "".join(e.text for e in events) == "base says hi" and len(events) == 3
    finally:
        engine.close()


# ---- SGLang --------------------------------------------------------------------------------------------
def fake_sglang(rec):
    sglang = types.ModuleType("sglang")

    class Engine:
        def __init__(self, model_path, max_running_requests=None, enable_lora=None, lora_paths=None,
                     max_loras_per_batch=8, max_lora_rank=None, lora_target_modules=None):
            rec.engine_args = dict(model_path=model_path, lora_paths=lora_paths,
                                   max_loras_per_batch=max_loras_per_batch, max_lora_rank=max_lora_rank,
                                   lora_target_modules=lora_target_modules)
            self.tokenizer_manager = NS(abort_request=rec.aborted.append)

        async def async_generate(self, prompt=None, sampling_params=None, input_ids=None, image_data=None,
                                 audio_data=None, video_data=None, return_logprob=False, logprob_start_len=None,
                                 top_logprobs_num=None, token_ids_logprob=None, lora_path=None, stream=False,
                                 rid=None):
            rec.calls.append(dict(prompt=prompt, input_ids=input_ids, image_data=image_data, audio_data=audio_data,
                                  video_data=video_data, lora_path=lora_path, params=sampling_params, rid=rid,
                                  logprob=(return_logprob, top_logprobs_num)))
            assert stream is True

            async def chunks():
                text, lps, tops = "", [], []
                words = WORDS[lora_path]
                async for j, word in rec.tokens(words):
                    text += word
                    if return_logprob:
                        lps.append((-0.5, IDS[word], None))  # no text unless the server is started to return it
                        tops.append([(-0.5, IDS[word], word), (-2.0, IDS['x'], "x")][:max(1, top_logprobs_num or 0)])
                    done = j == len(words) - 1
                    meta = {"prompt_tokens": len(input_ids or prompt), "completion_tokens": j + 1,
                            "finish_reason": {"type": "stop"} if done else None}
                    if return_logprob:
                        meta.update(output_token_logprobs=list(lps), output_top_logprobs=list(tops))
                    yield {"text": text, "meta_info": meta}

            return chunks()

        def shutdown(self):
            pass

    sglang.Engine = Engine
    return {"sglang": sglang}


def test_sglang_limits_media_and_lora(monkeypatch, adapters):
    engine, rec = make("sglang", monkeypatch, adapters)
    try:
        assert rec.engine_args["lora_paths"] == [a for a in adapters] and rec.engine_args["max_loras_per_batch"] == 2
        assert rec.engine_args["max_lora_rank"] == 12
        assert rec.engine_args["lora_target_modules"] == ["q_proj", "v_proj"]
        request = InferRequest(messages=[{"role": "user", "content": "<image>What?"}], images=["a.png"],
                               audios=["a.wav"], adapter="beta")
        assert engine.infer([request], RequestConfig(n=2, seed=1))[0].text == "beta says hi"
        call = rec.calls[0]
        assert call["prompt"] == "<|image_pad|>What?>" and call["input_ids"] is None
        assert len(call["image_data"]) == 1 and call["audio_data"] == [[0.0] * 4] and call["lora_path"] == "beta"
        assert len(rec.calls) == 2 and call["params"]["n"] == 1  # n answers, n requests
    finally:
        engine.close()


# ---- LMDeploy ------------------------------------------------------------------------------------------
def fake_lmdeploy(rec):
    lmdeploy = types.ModuleType("lmdeploy")

    class PytorchEngineConfig:
        def __init__(self, max_batch_size=128, adapters=None):
            rec.engine_args = dict(max_batch_size=max_batch_size, adapters=adapters)

    class GenerationConfig:
        def __init__(self, n=1, max_new_tokens=512, do_sample=False, top_p=1.0, top_k=50, temperature=0.8,
                     repetition_penalty=1.0, ignore_eos=False, random_seed=None, stop_words=None,
                     stop_token_ids=None, logprobs=None):
            self.logprobs, self.random_seed = logprobs, random_seed

    class Pipeline:
        async def generate(self, messages, session_id, gen_config=None, tools=None, stream_response=True,
                           sequence_start=True, sequence_end=True, step=0, do_preprocess=True, adapter_name=None,
                           input_ids=None):
            if (messages is not None) ^ (input_ids is None):
                raise ValueError("You must specify exactly one of messages or input_ids")
            rec.calls.append(dict(messages=messages, input_ids=input_ids, session=session_id, adapter=adapter_name,
                                  preprocess=do_preprocess, seed=gen_config.random_seed))
            words = WORDS[adapter_name]
            async for j, word in rec.tokens(words):
                done = j == len(words) - 1
                yield NS(response=word, history_token_len=0, input_token_len=5, generate_token_len=j + 1,
                         finish_reason="stop" if done else None, token_ids=[IDS[word]],
                         logprobs=[{IDS[word]: -0.5, IDS['x']: -2.0}] if gen_config.logprobs else None)

        async def stop_session(self, session_id):
            rec.aborted.append(session_id)

    lmdeploy.PytorchEngineConfig, lmdeploy.GenerationConfig = PytorchEngineConfig, GenerationConfig
    lmdeploy.pipeline = lambda model_path, backend_config=None: Pipeline()
    return {"lmdeploy": lmdeploy}


def test_lmdeploy_prompt_images_and_seeds(monkeypatch, adapters):
    from PIL import Image

    engine, rec = make("lmdeploy", monkeypatch, adapters)
    try:
        assert set(rec.engine_args["adapters"]) == {"alpha", "beta"}
        engine.infer(["Hi"])
        assert Tokenizer().decode(rec.calls[0]["input_ids"]) == "Hi>" and rec.calls[0]["preprocess"] is False
        request = InferRequest(messages=[{"role": "user", "content": "Look <image> here"}], images=["a.png"])
        engine.infer([request], RequestConfig(n=2, seed=5))
        parts = rec.calls[1]["messages"][0]["content"]
        assert [p["type"] for p in parts] == ["text", "image_data", "text"]
        assert isinstance(parts[1]["image_data"]["data"], Image.Image) and rec.calls[1]["preprocess"] is True
        assert sorted(c["seed"] for c in rec.calls[1:]) == [5, 6]
        with pytest.raises(ConfigError, match="images only"):
            engine.infer([InferRequest(messages=[{"role": "user", "content": "<audio>"}], audios=["a.wav"])])
    finally:
        engine.close()

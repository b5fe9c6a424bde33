"""HttpEngine forwards every media kind: images, audios and videos reach the server's engine with their bytes, each
where its tag stood in the text (untagged ones after the text), local files sent as data: URLs."""
from __future__ import annotations

import base64
import io
import wave

import pytest
from serve_fakes import RecordingEngine

pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def served():
    from swiftall.infer.client import HttpEngine
    from swiftall.serve.app import create_app
    from swiftall.serve.handlers import ServeSettings
    from swiftall.serve.server import ServerThread

    engine = RecordingEngine()
    with ServerThread(create_app(engine, ServeSettings(served_model_name="m"))) as server:
        client = HttpEngine(server.url + "/v1", model="m")
        yield client, engine
        client.close()


def wav_bytes() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(b"\x00\x01" * 160)
    return out.getvalue()


def decoded(item) -> bytes:
    text = item if isinstance(item, str) else item.decode()
    assert text.startswith("data:"), text[:40]
    return base64.b64decode(text.split(",", 1)[1])


def test_every_media_kind_reaches_the_server(served, tmp_path):
    from PIL import Image

    client, engine = served
    image, audio, video = tmp_path / "cat.png", tmp_path / "hello.wav", tmp_path / "clip.gif"
    Image.new("RGB", (3, 3), (9, 9, 9)).save(image)
    audio.write_bytes(wav_bytes())
    frames = [Image.new("RGB", (3, 3), (k, k, k)) for k in (0, 80, 160)]
    frames[0].save(video, save_all=True, append_images=frames[1:], duration=100)
    request = {"messages": [{"role": "user", "content": "Compare <image> with <video>; then listen:"}],
               "images": [str(image)], "videos": [str(video)], "audios": [str(audio)]}
    assert client.infer(request).text == "seen"
    got = engine.requests[-1]
    assert got.messages[-1]["content"] == "Compare <image> with <video>; then listen:<audio>"
    assert decoded(got.images[0]) == image.read_bytes()
    assert decoded(got.videos[0]) == video.read_bytes()
    assert decoded(got.audios[0]) == audio.read_bytes()


def test_bytes_and_pil_images_and_urls(served):
    from PIL import Image

    client, engine = served
    picture = Image.new("RGB", (2, 2), (1, 2, 3))
    client.infer({"messages": [{"role": "user", "content": "<image><image> and a sound"}],
                  "images": [picture, "data:image/png;base64,iVBORw0KGgo="], "audios": [wav_bytes()]})
    got = engine.requests[-1]
    assert got.messages[-1]["content"] == "<image><image> and a sound<audio>"
    assert Image.open(io.BytesIO(decoded(got.images[0]))).getpixel((0, 0)) == (1, 2, 3)
    assert got.images[1] == "data:image/png;base64,iVBORw0KGgo="
    assert decoded(got.audios[0]) == wav_bytes()


def test_what_cannot_travel_is_named(served):
    from swiftall.infer.client import HttpEngineError

    client, _ = served
    with pytest.raises(HttpEngineError, match="neither a URL nor a file"):
        client.infer({"messages": [{"role": "user", "content": "<image>"}], "images": ["/no/such/file.png"]})
    with pytest.raises(HttpEngineError, match="cannot be sent to a server"):
        client.infer({"messages": [{"role": "user", "content": "<video>"}], "videos": [[1, 2, 3]]})


def test_streamed_logprobs_reach_the_events():
    """Chunks' logprobs (chat's shape and completions') become the events' TokenLogprobs."""
    import json

    import httpx

    from swiftall.infer.client import HttpEngine

    chunks = [{"choices": [{"index": 0, "delta": {"content": "Hi"}, "logprobs": {"content": [
                  {"token": "Hi", "logprob": -0.25, "top_logprobs": [{"token": "Hi", "logprob": -0.25}]}]}}]},
              {"choices": [{"index": 0, "text": "!", "logprobs": {"tokens": ["!"], "token_logprobs": [-1.5],
                                                                 "top_logprobs": [{"!": -1.5, ".": -2.0}]}}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 3, "completion_tokens": 2}}]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    engine = HttpEngine.__new__(HttpEngine)
    engine.base_url, engine.model = "http://server/v1", "m"
    engine.client = httpx.Client(base_url="http://server/v1", transport=httpx.MockTransport(
        lambda request: httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})))
    from swiftall.infer import RequestConfig

    events = list(engine.stream_events("Hello", RequestConfig(max_new_tokens=2, logprobs=True)))
    assert [(e.text, [(lp.token, lp.logprob) for lp in e.logprobs]) for e in events[:2]] == [
        ("Hi", [("Hi", -0.25)]), ("!", [("!", -1.5)])]
    assert events[1].logprobs[0].top == [("!", -1.5), (".", -2.0)]
    assert events[-1].finish_reason == "stop" and events[-1].completion_tokens == 2

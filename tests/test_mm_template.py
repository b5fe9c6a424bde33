"""Multimodal encoding: placeholder expansion by the processor, labels, placement, truncation, media errors."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from fixtures_mm import BUILDERS, write_gif, write_image, write_wav
from swiftall.models import load_tokenizer, resolve_model
from swiftall.templates import IGNORE, TemplateError, TooLongError, get_template
from swiftall.templates.media import MediaError, MediaOptions, load_audio, load_image, load_media, load_video
from swiftall.templates.multimodal import MediaTruncationError


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    write_image(d / "a.png", (56, 56))
    write_image(d / "wide.png", (112, 56), seed=1)
    write_wav(d / "tone.wav", seconds=0.5)
    write_gif(d / "clip.gif", frames=8, fps=8.0)
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (d / "empty.wav").write_bytes(b"")
    return d


def _loaded(smol_dir, tmp_path_factory, name):
    path = BUILDERS[name](smol_dir, tmp_path_factory.mktemp(name))
    info = resolve_model(str(path))
    return info, load_tokenizer(info)


@pytest.fixture(scope="module")
def qwen(smol_dir, tmp_path_factory):
    return _loaded(smol_dir, tmp_path_factory, "qwen2_vl")


def chat(question, answer="A picture."):
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def test_processor_expands_placeholders_and_labels_cover_only_the_answer(qwen, media_dir):
    info, tok = qwen
    template = get_template(tok, info)
    enc = template.encode(chat("<image>What is this?"), media={"images": [str(media_dir / "a.png")]})
    image_id = tok.convert_tokens_to_ids("<|image_pad|>")
    # 56x56 pixels = 4x4 patches of 14, merged 2x2 -> 4 image tokens, as the processor's grid says
    assert enc.input_ids.count(image_id) == 4
    assert enc.extra["image_grid_thw"].tolist() == [[1, 4, 4]]
    trained = tok.decode([t for t, l in zip(enc.input_ids, enc.labels) if l != IGNORE])
    assert trained == "A picture.<|im_end|>\n"
    assert all(l == IGNORE for t, l in zip(enc.input_ids, enc.labels) if t == image_id)
    assert enc.extra["mm_token_type_ids"].shape == (1, len(enc.input_ids))


def test_generation_prompt_is_the_training_prefix(qwen, media_dir):
    info, tok = qwen
    template = get_template(tok, info)
    media = {"images": [str(media_dir / "a.png")]}
    full = template.encode(chat("<image>What is this?"), media=media)
    prompt = template.encode_for_generation(chat("<image>What is this?")[:1], media=media)
    assert full.input_ids[: len(prompt.input_ids)] == prompt.input_ids
    assert prompt.extra["pixel_values"].shape == full.extra["pixel_values"].shape


def test_untagged_media_goes_first_in_the_first_user_turn(qwen, media_dir):
    info, tok = qwen
    template = get_template(tok, info)
    media = {"images": [str(media_dir / "a.png")]}
    assert template.encode(chat("What is this?"), media=media).input_ids == \
        template.encode(chat("<image>What is this?"), media=media).input_ids


def test_wrong_number_of_tags_is_an_error(qwen, media_dir):
    info, tok = qwen
    template = get_template(tok, info)
    with pytest.raises(TemplateError, match=r"2 <image> tag\(s\) in the text but 1 images"):
        template.encode(chat("<image><image>Two?"), media={"images": [str(media_dir / "a.png")]})
    with pytest.raises(TemplateError, match="assistant turn"):
        template.encode(chat("Hi", "<image>"), media={"images": [str(media_dir / "a.png")]})


def test_max_pixels_reduces_image_tokens(qwen, media_dir):
    info, tok = qwen
    media = {"images": [str(media_dir / "wide.png")]}
    big = get_template(tok, info).encode(chat("<image>?"), media=media)
    small = get_template(tok, info, max_pixels=56 * 28).encode(chat("<image>?"), media=media)
    image_id = tok.convert_tokens_to_ids("<|image_pad|>")
    assert big.input_ids.count(image_id) == 8          # 112x56 -> 8x4 patches -> 8 tokens
    assert small.input_ids.count(image_id) < 8


def test_truncation_never_cuts_a_placeholder_run(qwen, media_dir):
    info, tok = qwen
    media = {"images": [str(media_dir / "a.png")]}
    messages = chat("<image>Describe it.", "word " * 40)
    full = get_template(tok, info).encode(messages, media=media)
    # right: the long answer is cut after the image, the image inputs stay whole
    cut = get_template(tok, info, max_length=30, truncation_strategy="right").encode(messages, media=media)
    assert len(cut.input_ids) == 30 and cut.input_ids == full.input_ids[:30]
    assert cut.extra["mm_token_type_ids"].shape == (1, 30)
    assert cut.extra["pixel_values"].shape == full.extra["pixel_values"].shape
    # left: cutting the start would drop the image's tokens -> refused with the reason
    with pytest.raises(MediaTruncationError, match="media placeholder tokens"):
        get_template(tok, info, max_length=30, truncation_strategy="left").encode(messages, media=media)
    with pytest.raises(TooLongError):
        get_template(tok, info, max_length=30, truncation_strategy="delete").encode(messages, media=media)


def test_text_only_rows_still_encode(qwen):
    info, tok = qwen
    enc = get_template(tok, info).encode(chat("Just text."))
    assert enc.trained_tokens > 0 and "pixel_values" not in enc.extra


def test_media_sources_path_base64_array_and_url(media_dir):
    raw = (media_dir / "a.png").read_bytes()
    b64 = base64.b64encode(raw).decode()
    from_path = np.asarray(load_image(str(media_dir / "a.png")))
    assert (np.asarray(load_image("data:image/png;base64," + b64)) == from_path).all()
    assert (np.asarray(load_image(b64)) == from_path).all()
    assert (np.asarray(load_image(from_path)) == from_path).all()
    import http.server
    import threading
    from functools import partial

    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(media_dir))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/a.png"
        assert (np.asarray(load_image(url)) == from_path).all()
        with pytest.raises(MediaError, match=r"nope\.png: the server answered HTTP 404"):
            load_image(url.replace("a.png", "nope.png"))
    finally:
        server.shutdown()


def test_broken_media_errors_name_the_item(media_dir):
    with pytest.raises(MediaError, match=r"field 'images\[1\]' .*file not found"):
        load_media({"images": [str(media_dir / "a.png"), str(media_dir / "missing.png")]})
    with pytest.raises(MediaError, match=r"images\[0\].*broken.png.*not a readable image"):
        load_media({"images": [str(media_dir / "broken.png")]})
    with pytest.raises(MediaError, match="audio file is empty"):
        load_media({"audios": [str(media_dir / "empty.wav")]})
    with pytest.raises(MediaError, match="zero length"):
        load_audio(np.zeros(0, dtype=np.float32))


def test_audio_is_resampled_to_the_feature_extractor_rate(media_dir):
    wave16 = load_audio(str(media_dir / "tone.wav"), MediaOptions(sampling_rate=16000))
    wave8 = load_audio(str(media_dir / "tone.wav"), MediaOptions(sampling_rate=8000))
    assert len(wave16) == 8000 and len(wave8) == 4000 and wave16.dtype == np.float32
    assert abs(float(np.abs(wave16).max()) - 0.3) < 0.01


def test_video_fps_and_max_frames(media_dir):
    clip = str(media_dir / "clip.gif")       # 8 frames at 8 fps
    assert len(load_video(clip)) == 8
    assert len(load_video(clip, MediaOptions(fps=2.0))) == 2
    assert len(load_video(clip, MediaOptions(max_frames=3))) == 3
    frames = [str(media_dir / "a.png")] * 5
    assert len(load_video(frames, MediaOptions(max_frames=4))) == 4


def test_video_rows_encode_for_qwen2_vl(qwen, media_dir):
    info, tok = qwen
    enc = get_template(tok, info, max_frames=4).encode(chat("<video>Which way?", "Right."),
                                                       media={"videos": [str(media_dir / "clip.gif")]})
    video_id = tok.convert_tokens_to_ids("<|video_pad|>")
    t, h, w = enc.extra["video_grid_thw"].tolist()[0]
    assert t == 2 and enc.input_ids.count(video_id) == t * h * w // 4


def test_collator_pads_token_inputs_and_joins_media(smol_dir, tmp_path_factory, media_dir):
    info, tok = _loaded(smol_dir, tmp_path_factory, "llava_next")
    template = get_template(tok, info)
    a = template.encode(chat("<image>Square?"), media={"images": [str(media_dir / "a.png")]})
    b = template.encode(chat("<image>Wide one, with a longer question?"), media={"images": [str(media_dir / "wide.png")]})
    assert a.extra["pixel_values"].shape[1] != b.extra["pixel_values"].shape[1]   # tiles differ per image
    batch = template.collator()([{"input_ids": e.input_ids, "labels": e.labels, "source": "x", **e.extra}
                                 for e in (a, b)])
    longest = max(len(a), len(b))
    assert batch["input_ids"].shape == batch["labels"].shape == (2, longest)
    assert batch["attention_mask"].sum().item() == len(a) + len(b)
    assert batch["pixel_values"].shape[:2] == (2, max(a.extra["pixel_values"].shape[1], b.extra["pixel_values"].shape[1]))
    assert batch["image_sizes"].tolist() == [[56, 56], [56, 112]]


def test_audio_rows_encode_for_qwen2_audio(smol_dir, tmp_path_factory, media_dir):
    info, tok = _loaded(smol_dir, tmp_path_factory, "qwen2_audio")
    template = get_template(tok, info)
    enc = template.encode(chat("<audio>What sound?", "A tone."), media={"audios": [str(media_dir / "tone.wav")]})
    audio_id = tok.convert_tokens_to_ids("<|AUDIO|>")
    frames = int(enc.extra["feature_attention_mask"].sum())     # 0.5 s in 10 ms feature frames
    assert frames == 50
    # the encoder's stride-2 convolution then its stride-2 pooling: one token per 40 ms
    assert enc.input_ids.count(audio_id) == ((frames - 1) // 2 + 1 - 2) // 2 + 1 == 12
    assert enc.extra["input_features"].shape[:2] == (1, 80)
    with pytest.raises(MediaError, match="empty"):
        template.encode(chat("<audio>?"), media={"audios": [str(media_dir / "empty.wav")]})


def test_remote_code_family_needs_explicit_opt_in(tmp_path):
    from swiftall.models.loader import ModelInfo
    from swiftall.models.registry import get_family
    from swiftall.utils.errors import ConfigError

    (tmp_path / "config.json").write_text("{}")
    info = ModelInfo(path=tmp_path, name="qwen-vl-chat", meta=None, family=get_family("qwen_vl_chat"), template=None)
    with pytest.raises(ConfigError, match="--trust_remote_code true"):
        load_tokenizer(info, trust_remote_code=False)

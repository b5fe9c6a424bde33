"""Media decoding (templates/media.py): audio resampled by a library resampler (soxr), videos read at their
sampled frame indices only."""
import io

import numpy as np
import pytest
from PIL import Image

from swiftall.templates.media import MediaOptions, _decode_at, frame_indices, load_audio, load_video, resample


def _tone(freq, rate, seconds=0.5, amplitude=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_resampling_keeps_a_tone_and_removes_what_the_new_rate_cannot_hold():
    kept = resample(_tone(1000, 44100), 44100, 16000)
    assert kept.dtype == np.float32 and len(kept) == 8000
    middle = slice(400, -400)  # away from the edges
    assert np.abs(kept[middle] - _tone(1000, 16000)[middle]).max() < 0.01
    # 7 kHz cannot exist at 8 kHz (Nyquist 4 kHz): a band-limited resampler removes it; linear interpolation
    # folds it back as a loud 1 kHz alias (about 0.2 RMS here)
    folded = resample(_tone(7000, 44100), 44100, 8000)
    assert float(np.sqrt(np.mean(folded[middle] ** 2))) < 0.02


def test_audio_files_at_another_rate_arrive_at_the_models_rate(tmp_path):
    import wave

    path = tmp_path / "tone22k.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(22050)
        pcm = (_tone(440, 22050) * 32767).astype(np.int16)
        w.writeframes(np.stack([pcm, pcm], axis=1).tobytes())
    audio = load_audio(str(path), MediaOptions(sampling_rate=16000))
    assert len(audio) == 8000 and abs(float(np.abs(audio).max()) - 0.5) < 0.02


def test_frame_indices():
    assert frame_indices(8, 8.0, 2.0, None) == [0, 4]
    assert frame_indices(30, 10.0, 2.0, 4) == [0, 5, 15, 20]   # every 5th frame, then 4 of those 6
    assert frame_indices(5, None, 2.0, 3) == [0, 1, 3]          # no known rate: only max_frames applies


class _Frame:
    converted = 0

    def __init__(self, i):
        self.i = i

    def to_image(self):
        _Frame.converted += 1
        return self.i


def test_decoding_stops_after_the_last_sampled_frame_and_converts_only_sampled_ones():
    pulled = []

    def frames():
        for i in range(100):
            pulled.append(i)
            yield _Frame(i)

    assert _decode_at(frames(), [0, 10, 20]) == [0, 10, 20]
    assert len(pulled) == 21 and _Frame.converted == 3


def _levels(frames):
    return [int(round(np.asarray(f.convert("L")).mean() / 8)) for f in frames]


def test_gif_frames_are_read_at_the_sampled_indices(tmp_path):
    frames = [Image.new("RGB", (16, 16), (8 * i,) * 3) for i in range(8)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=125, loop=0)
    path = tmp_path / "clip.gif"
    path.write_bytes(buffer.getvalue())
    assert _levels(load_video(str(path), MediaOptions(fps=2.0))) == [0, 4]
    assert _levels(load_video(str(path), MediaOptions(max_frames=3))) == [0, 2, 5]


def test_mp4_frames_are_read_at_the_sampled_indices(tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for i in range(30):  # frame i is a flat grey of level 8 * i, so a decoded frame says which one it is
            image = Image.new("RGB", (32, 32), (8 * i,) * 3)
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert _levels(load_video(str(path), MediaOptions(fps=2.0))) == [0, 5, 10, 15, 20, 25]
    assert _levels(load_video(str(path), MediaOptions(max_frames=3))) == [0, 10, 20]

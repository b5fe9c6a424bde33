"""Read the media a row points at: images, audio and video from paths, URLs, base64 or in-memory objects.

Everything here returns plain decoded data (PIL images, float32 numpy waveforms, lists of frames) for the
model's processor. Every failure is a `MediaError` that says which item could not be read and why; the
template adds the row's file:line. Decoding is lazy (a row's media is read when the row is encoded) and a
row's items are read in parallel threads.

It lives in templates (not data) because the template decodes media for training, inference and serving
alike, and templates may not import the data layer; data may import it.
"""
from __future__ import annotations

import base64
import binascii
import io
import math
import re
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ..utils.errors import DataError
from ..utils.optional import require

URL_TIMEOUT_S = 20
MAX_URL_BYTES = 200 * 1024 * 1024
_DATA_URI = re.compile(r"^data:([\w/+.-]*)(;[\w=.-]+)*;base64,", re.IGNORECASE)
VIDEO_FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class MediaError(DataError):
    """A media item that cannot be read; the message names the item and what to do."""


@dataclass
class MediaOptions:
    """User controls on decoded media (--max_pixels/--min_pixels, --fps/--max_frames)."""

    max_pixels: Optional[int] = None
    min_pixels: Optional[int] = None
    fps: Optional[float] = None
    max_frames: Optional[int] = None
    sampling_rate: int = 16000       # set from the model's feature extractor


# ---- raw bytes ------------------------------------------------------------------------------------
def describe(item: Any) -> str:
    if isinstance(item, (str, Path)):
        text = str(item)
        return text if len(text) <= 80 else text[:60] + "...(" + str(len(text)) + " chars)"
    return type(item).__name__


def read_bytes(item: str | Path, kind: Optional[str] = None) -> bytes:
    """A path, an http(s) URL, a data: URI or a bare base64 string -> bytes. `kind` (images/audios/videos) is
    what a downloaded answer's Content-Type must be."""
    text = str(item)
    match = _DATA_URI.match(text)
    if match:
        return _b64(text[match.end():])
    if text.lower().startswith(("http://", "https://")):
        return _fetch(text, kind)
    try:
        path = Path(text).expanduser()
        if path.is_file():
            return path.read_bytes()
    except OSError:  # a long base64 string is no valid file name
        pass
    if len(text) > 256 and re.fullmatch(r"[A-Za-z0-9+/=\s]+", text):
        return _b64(text)
    raise MediaError(f"file not found: {text}")


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise MediaError(f"invalid base64 data ({exc})") from None


def _fetch(url: str, kind: Optional[str] = None) -> bytes:
    """Through the one media fetcher (utils/fetch.py: redirects re-checked, size, time and type limits). Rows and
    local `infer` requests are the user's own, so private addresses are allowed here; the server downloads a
    request's URLs itself with its stricter policy before they reach a template."""
    from ..utils.fetch import FetchError, FetchPolicy, fetch_url

    try:
        return fetch_url(url, FetchPolicy(max_bytes=MAX_URL_BYTES, timeout=URL_TIMEOUT_S), kind)
    except FetchError as exc:
        raise MediaError(str(exc)) from None


# ---- images ---------------------------------------------------------------------------------------
def load_image(item: Any, options: Optional[MediaOptions] = None):
    """-> an RGB PIL image, resized to respect --max_pixels/--min_pixels (aspect ratio kept)."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(item, Image.Image):
        image = item
    elif _is_array(item):
        image = Image.fromarray(_uint8(item))
    elif isinstance(item, (bytes, bytearray)):
        image = _open_image(bytes(item), Image, UnidentifiedImageError)
    elif isinstance(item, dict) and ("bytes" in item or "path" in item):   # HF datasets' Image feature
        image = load_image(item.get("bytes") or item.get("path"), options)
    elif isinstance(item, (str, Path)):
        image = _open_image(read_bytes(item, "images"), Image, UnidentifiedImageError)
    else:
        raise MediaError(f"an image must be a path, URL, base64 string or PIL image, got {type(item).__name__}")
    return fit_pixels(image.convert("RGB"), options)


def _open_image(data: bytes, Image: Any, Unidentified: Any):
    if not data:
        raise MediaError("the image file is empty")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (Unidentified, OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"not a readable image ({exc})") from None
    return image


def fit_pixels(image: Any, options: Optional[MediaOptions]):
    """Scale an image so that width*height lies in [min_pixels, max_pixels]."""
    if options is None:
        return image
    w, h = image.size
    scale = 1.0
    if options.max_pixels and w * h > options.max_pixels:
        scale = math.sqrt(options.max_pixels / (w * h))
    elif options.min_pixels and w * h < options.min_pixels:
        scale = math.sqrt(options.min_pixels / (w * h))
    if scale == 1.0:
        return image
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    resized = image.resize(size)
    resized.info["source_size"] = image.info.get("source_size", (w, h))  # what grounding boxes are measured on
    return resized


def _is_array(item: Any) -> bool:
    return hasattr(item, "shape") and hasattr(item, "dtype")


def _uint8(array: Any):
    import numpy as np

    array = np.asarray(array)
    if array.dtype != np.uint8:
        array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return array


# ---- audio ----------------------------------------------------------------------------------------
def load_audio(item: Any, options: Optional[MediaOptions] = None):
    """-> mono float32 numpy waveform at the feature extractor's sampling rate.

    WAV is read with the standard library; other formats need soundfile (pip install soundfile).
    A (waveform, rate) pair or a dict {"array", "sampling_rate"} is taken as already decoded."""
    import numpy as np

    rate_wanted = (options or MediaOptions()).sampling_rate
    if isinstance(item, dict) and "array" in item:
        wave_, rate = np.asarray(item["array"], dtype=np.float32), int(item.get("sampling_rate", rate_wanted))
    elif isinstance(item, tuple) and len(item) == 2:
        wave_, rate = np.asarray(item[0], dtype=np.float32), int(item[1])
    elif _is_array(item):
        wave_, rate = np.asarray(item, dtype=np.float32), rate_wanted
    elif isinstance(item, (bytes, bytearray, str, Path)):
        data = bytes(item) if isinstance(item, (bytes, bytearray)) else read_bytes(item, "audios")
        wave_, rate = decode_audio(data)
    else:
        raise MediaError(f"an audio item must be a path, URL, base64 string or waveform, got {type(item).__name__}")
    if wave_.ndim == 2:
        wave_ = wave_.mean(axis=1 if wave_.shape[1] <= 8 else 0)
    if wave_.size == 0:
        raise MediaError("the audio has no samples (zero length)")
    if not np.isfinite(wave_).all():
        raise MediaError("the audio contains NaN or infinite samples")
    return resample(wave_, rate, rate_wanted)


def decode_audio(data: bytes):
    import numpy as np

    if not data:
        raise MediaError("the audio file is empty")
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        try:
            with wave.open(io.BytesIO(data)) as w:
                width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
                frames = w.readframes(w.getnframes())
        except (wave.Error, EOFError) as exc:
            raise MediaError(f"not a readable WAV file ({exc})") from None
        kinds = {1: (np.uint8, 128.0, 128.0), 2: (np.int16, 0.0, 32768.0), 4: (np.int32, 0.0, 2147483648.0)}
        if width not in kinds:
            raise MediaError(f"unsupported WAV sample width {width * 8} bits; use 8, 16 or 32-bit PCM")
        dtype, offset, scale = kinds[width]
        samples = (np.frombuffer(frames, dtype=dtype).astype(np.float32) - offset) / scale
        return samples.reshape(-1, channels), rate
    soundfile = require("soundfile", "multimodal", "reading non-WAV audio")
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    except Exception as exc:
        raise MediaError(f"not a readable audio file ({exc})") from None
    return samples, rate


def resample(samples: Any, rate: int, target: int):
    """Resample with soxr (the SoX resampler, librosa's default; high quality, band-limited) to the feature
    extractor's rate; linear interpolation would alias speech above the new Nyquist frequency."""
    import numpy as np

    samples = np.asarray(samples, dtype=np.float32)
    if rate == target:
        return samples
    soxr = require("soxr", "multimodal", f"resampling audio from {rate} Hz to the model's {target} Hz")
    return soxr.resample(samples, rate, target, quality="HQ").astype(np.float32, copy=False)


# ---- video ----------------------------------------------------------------------------------------
def load_video(item: Any, options: Optional[MediaOptions] = None):
    """-> a list of RGB PIL frames, sampled at --fps and capped at --max_frames.

    Accepts a list of frames or frame paths, a folder of frame images, an animated GIF/WebP, or (with PyAV
    installed) any video file. Only the sampled frames are read and converted to images."""
    options = options or MediaOptions()
    if isinstance(item, (list, tuple)) or (_is_array(item) and getattr(item, "ndim", 0) == 4):
        index = frame_indices(len(item), None, options.fps, options.max_frames)
        frames = [load_image(item[i], options) for i in index]
    elif isinstance(item, (str, Path)) and Path(str(item)).is_dir():
        files = sorted(p for p in Path(str(item)).iterdir() if p.suffix.lower() in VIDEO_FRAME_SUFFIXES)
        if not files:
            raise MediaError(f"the folder {item} holds no frame images ({', '.join(VIDEO_FRAME_SUFFIXES)})")
        frames = [load_image(files[i], options) for i in frame_indices(len(files), None, options.fps,
                                                                        options.max_frames)]
    elif isinstance(item, (str, Path, bytes, bytearray)):
        data = bytes(item) if isinstance(item, (bytes, bytearray)) else read_bytes(item, "videos")
        frames = [fit_pixels(f, options) for f in _decode_video(data, options)]
    else:
        raise MediaError(f"a video must be a path, URL, frame list or folder of frames, got {type(item).__name__}")
    if not frames:
        raise MediaError("the video has no frames")
    return frames


def frame_indices(total: int, native_fps: Optional[float], fps: Optional[float],
                  max_frames: Optional[int]) -> list[int]:
    """Which of `total` frames to keep: one per 1/fps seconds (when the clip's own rate is known), then at most
    `max_frames` evenly spread."""
    index = list(range(total))
    if fps and native_fps and fps < native_fps:
        step = native_fps / fps
        index = sorted({int(i * step) for i in range(math.ceil(total / step - 1e-6))})
    if max_frames and len(index) > max_frames:
        index = [index[int(i * len(index) / max_frames)] for i in range(max_frames)]
    return index


def _decode_video(data: bytes, options: MediaOptions) -> list:
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise MediaError("the video file is empty")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        return _decode_av(data, options)
    except (OSError, ValueError) as exc:
        raise MediaError(f"not a readable video ({exc})") from None
    duration_ms = image.info.get("duration") or 0
    index = frame_indices(getattr(image, "n_frames", 1), 1000.0 / duration_ms if duration_ms else None,
                          options.fps, options.max_frames)
    frames = []
    try:
        for i in index:  # an animated GIF/WebP: seek to the sampled frames only
            image.seek(i)
            frames.append(image.convert("RGB"))
    except (OSError, EOFError, ValueError) as exc:
        raise MediaError(f"not a readable video ({exc})") from None
    return frames


def _decode_av(data: bytes, options: MediaOptions) -> list:
    """A video file through PyAV: the sampled frame indices are computed from the stream's frame count and rate
    before decoding; frames are decoded in order (a frame between key frames needs its predecessors) up to the
    last sampled one, and only sampled frames are converted to images and kept."""
    av = require("av", "multimodal", "decoding video files (mp4, webm, ...)")
    try:
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = float(stream.average_rate) if stream.average_rate else None
            total = stream.frames or _estimated_frames(container, stream, rate)
            if not total:  # no count in the container: decode all, then sample
                frames = [f.to_image() for f in container.decode(stream)]
                return [frames[i] for i in frame_indices(len(frames), rate, options.fps, options.max_frames)]
            wanted = frame_indices(total, rate, options.fps, options.max_frames)
            return _decode_at(container.decode(stream), wanted)
    except MediaError:
        raise
    except Exception as exc:
        raise MediaError(f"not a readable video ({exc})") from None


def _estimated_frames(container: Any, stream: Any, rate: Optional[float]) -> int:
    if not rate:
        return 0
    if stream.duration is not None and stream.time_base is not None:
        return int(float(stream.duration * stream.time_base) * rate)
    return int(container.duration / 1_000_000 * rate) if container.duration else 0


def _decode_at(decoded: Any, wanted: list[int]) -> list:
    keep, frames = set(wanted), []
    last = wanted[-1] if wanted else -1
    for i, frame in enumerate(decoded):
        if i in keep:
            frames.append(frame.to_image())
        if i >= last:
            break
    return frames


# ---- a row's media ---------------------------------------------------------------------------------
LOADERS: dict[str, Callable[[Any, Optional[MediaOptions]], Any]] = {
    "images": load_image, "audios": load_audio, "videos": load_video}


def load_media(media: Optional[dict[str, list]], options: Optional[MediaOptions] = None,
               max_workers: int = 4) -> dict[str, list]:
    """Decode every item of a row ({"images": [...], ...}) in parallel threads.

    Raises MediaError naming the field and index of the first item that cannot be read."""
    jobs = [(kind, i, item) for kind, items in (media or {}).items() for i, item in enumerate(_as_list(items))]
    if not jobs:
        return {}
    for kind, _, _ in jobs:
        if kind not in LOADERS:
            raise MediaError(f"unknown media field '{kind}'; use images, audios or videos")

    def one(job: tuple[str, int, Any]) -> Any:
        kind, i, item = job
        try:
            return LOADERS[kind](item, options)
        except MediaError as exc:
            raise MediaError(f"field '{kind}[{i}]' ({describe(item)}): {exc}") from None

    if len(jobs) == 1:
        results = [one(jobs[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(max_workers, len(jobs))) as pool:
            results = list(pool.map(one, jobs))
    out: dict[str, list] = {}
    for (kind, _, _), value in zip(jobs, results):
        out.setdefault(kind, []).append(value)
    return out


def _as_list(items: Any) -> list:
    if items is None:
        return []
    return list(items) if isinstance(items, (list, tuple)) else [items]

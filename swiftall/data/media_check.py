"""Cheap checks that a local media file is what its field says, before any model loads: images open their
header with Pillow (validate.py), audio and video files are checked here the same way. Each check returns a
problem ('' when the file looks readable); validate.py turns it into a file:line error.

Audio: WAV through the standard library's header parser, other formats through soundfile (libsndfile) when it is
installed, else by their leading bytes. Video: animated GIF/WebP through Pillow, containers through PyAV when it is
installed, else by their leading bytes; a folder of frame images is a video too.
"""
from __future__ import annotations

import wave
from functools import lru_cache
from pathlib import Path

from ..templates.media import VIDEO_FRAME_SUFFIXES

AUDIO_MAGIC = ((0, b"fLaC"), (0, b"OggS"), (0, b"ID3"), (0, b"FORM"), (4, b"ftyp"), (0, b"\x1a\x45\xdf\xa3"))
VIDEO_MAGIC = ((4, b"ftyp"), (0, b"\x1a\x45\xdf\xa3"), (0, b"FLV"), (0, b"\x00\x00\x01\xba"), (0, b"\x00\x00\x01\xb3"),
               (0, b"\x30\x26\xb2\x75"), (0, b"GIF8"), (8, b"AVI "))
HEAD_BYTES = 64


def media_problem(path: Path, field: str) -> str:
    """'' when the file at `path` can be read as the `field` (audios, videos) says, else what is wrong."""
    if field == "videos" and path.is_dir():
        if any(p.suffix.lower() in VIDEO_FRAME_SUFFIXES for p in path.iterdir()):
            return ""
        return f"the folder holds no frame images ({', '.join(VIDEO_FRAME_SUFFIXES)})"
    stamp = path.stat().st_mtime_ns
    if field == "audios":
        return _audio_problem(str(path), stamp)
    if field == "videos":
        return _video_problem(str(path), stamp)
    return ""


def _head(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(HEAD_BYTES)


def _sniff(head: bytes, magic: tuple) -> bool:
    return any(head[at:at + len(sig)] == sig for at, sig in magic)


@lru_cache(maxsize=65536)
def _audio_problem(path: str, _mtime_ns: int) -> str:
    head = _head(path)
    if not head:
        return "the file is empty"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        try:
            with wave.open(path) as w:
                w.getnframes()
        except (wave.Error, EOFError) as exc:
            return f"not a readable WAV file ({exc})"
        return ""
    try:
        import soundfile
    except ImportError:  # no decoder here: recognise the common formats by their leading bytes
        is_mp3 = head[:1] == b"\xff" and head[1] & 0xE0 == 0xE0
        return "" if is_mp3 or _sniff(head, AUDIO_MAGIC) else "not a recognised audio file (WAV, FLAC, OGG, MP3, ...)"
    try:
        soundfile.info(path)
    except Exception as exc:  # soundfile.LibsndfileError and friends
        return f"not a readable audio file ({str(exc)[:120]})"
    return ""


@lru_cache(maxsize=65536)
def _video_problem(path: str, _mtime_ns: int) -> str:
    head = _head(path)
    if not head:
        return "the file is empty"
    if head[:4] == b"GIF8" or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return ""
    try:
        import av
    except ImportError:
        return "" if _sniff(head, VIDEO_MAGIC) else "not a recognised video file (MP4, WebM, MKV, AVI, GIF, ...)"
    try:
        with av.open(path) as container:
            if not container.streams.video:
                return "the file has no video stream"
    except Exception as exc:  # av.error.InvalidDataError and friends
        return f"not a readable video ({str(exc)[:120]})"
    return ""

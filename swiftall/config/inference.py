"""Sections of the inference commands: media sizing, sampling, generation, the engine, one query, the server."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ..utils.errors import ConfigError
from .base import Section, arg

BACKENDS = ("pt", "vllm", "sglang", "lmdeploy", "llama_cpp")


@dataclass
class MediaSection(Section):
    name = "media"
    title = "media sizing and sampling"
    max_pixels: Optional[int] = arg(None, "Scale images (and video frames) down to at most this many pixels "
                                    "(width*height) before the processor sees them")
    min_pixels: Optional[int] = arg(None, "Scale smaller images up to at least this many pixels")
    fps: Optional[float] = arg(None, "Video: frames per second kept from each clip (default: every frame)")
    max_frames: Optional[int] = arg(None, "Video: most frames kept per clip, spread evenly")

    def check(self) -> None:
        for name in ("max_pixels", "min_pixels", "max_frames"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name} must be at least 1, got {value}")
        if self.max_pixels and self.min_pixels and self.min_pixels > self.max_pixels:
            raise ConfigError(f"--min_pixels {self.min_pixels} is larger than --max_pixels {self.max_pixels}")
        if self.fps is not None and self.fps <= 0:
            raise ConfigError(f"--fps must be > 0, got {self.fps}")

    def options(self) -> dict[str, Any]:
        """The keyword arguments `get_template` takes for media sizing and sampling."""
        return {"max_pixels": self.max_pixels, "min_pixels": self.min_pixels, "fps": self.fps,
                "max_frames": self.max_frames}


@dataclass
class SamplingSection(Section):
    name = "sampling"
    title = "sampling"
    temperature: Optional[float] = arg(None, "Sampling temperature; 0 is greedy (default: the model's own setting; "
                                       "rlhf: 0.9)")
    top_p: Optional[float] = arg(None, "Nucleus sampling threshold")
    top_k: Optional[int] = arg(None, "Sample from the k most likely tokens")
    repetition_penalty: Optional[float] = arg(None, "Penalty for repeated tokens (1.0 is none)")

    def check(self) -> None:
        if self.temperature is not None and self.temperature < 0:
            raise ConfigError(f"--temperature must be >= 0, got {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"--top_p must be in (0, 1], got {self.top_p}")
        if self.top_k is not None and self.top_k < 0:
            raise ConfigError(f"--top_k must be >= 0, got {self.top_k}")
        if self.repetition_penalty is not None and self.repetition_penalty <= 0:
            raise ConfigError(f"--repetition_penalty must be > 0, got {self.repetition_penalty}")


@dataclass
class GenerationSection(Section):
    name = "generation"
    title = "generation"
    max_new_tokens: int = arg(512, "Most tokens generated per answer")
    stream: bool = arg(False, "Print tokens as they are generated")

    def check(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"--max_new_tokens must be at least 1, got {self.max_new_tokens}")


@dataclass
class EngineSection(Section):
    name = "engine"
    title = "inference engine"
    infer_backend: str = arg("pt", "Inference engine", choices=BACKENDS)
    max_batch_size: int = arg(16, "Most requests generated together")

    def check(self) -> None:
        if self.max_batch_size < 1:
            raise ConfigError(f"--max_batch_size must be at least 1, got {self.max_batch_size}")


@dataclass
class QuerySection(Section):
    name = "query"
    title = "one question or batch"
    query: Optional[str] = arg(None, "Answer this one question, print the answer and exit (instead of the terminal "
                               "chat)")
    images: list[str] = arg([], "Image files or URLs for --query or the terminal chat's first message; <image> tags "
                            "in the text place them, untagged ones go first")
    audios: list[str] = arg([], "Audio files or URLs, like --images (<audio> tags)")
    videos: list[str] = arg([], "Video files, frame folders or URLs, like --images (<video> tags)")
    result_path: Optional[str] = arg(None, "Batch mode: JSONL written with each input row plus its 'response'")

    def media_flags(self) -> dict[str, list[str]]:
        return {k: v for k, v in (("images", self.images), ("audios", self.audios), ("videos", self.videos)) if v}


@dataclass
class BindSection(Section):
    name = "bind"
    title = "address"
    host: str = arg("127.0.0.1", "Address to bind; 127.0.0.1 (default) serves this machine only, 0.0.0.0 all "
                    "interfaces (then require a key: --api_key for deploy, --auth for webui)",
                    aliases=("server_name",))
    port: int = arg(8000, "Port to listen on (0: any free port)", aliases=("server_port",))

    def check(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be in 0..65535, got {self.port}")


@dataclass
class ServerSection(Section):
    name = "server"
    title = "server"
    served_model_name: Optional[str] = arg(None, "Model name clients send and /v1/models lists (default: the "
                                           "model's folder or registered name)")
    api_key: Optional[str] = arg(None, "Require 'Authorization: Bearer KEY' on every route but /health")
    max_body_bytes: int = arg(10 * 1024 * 1024, "Largest accepted request body in bytes (larger: 413)")
    max_queue_size: int = arg(256, "Most requests waiting for a batch slot; beyond it requests get 429")
    allow_local_media: Optional[str] = arg(None, "Folder whose files requests may name as image/audio/video paths "
                                           "(default: local paths refused)")
    allow_private_media_urls: bool = arg(False, "Allow http(s) media URLs that point to loopback/private addresses")

    def check(self) -> None:
        if self.max_body_bytes < 1024:
            raise ConfigError(f"--max_body_bytes must be at least 1024, got {self.max_body_bytes}")
        if self.max_queue_size < 1:
            raise ConfigError(f"--max_queue_size must be at least 1, got {self.max_queue_size}")

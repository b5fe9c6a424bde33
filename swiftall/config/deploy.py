"""`swiftall deploy`: the OpenAI-compatible server's flags, composed with the model/adapter/inference mixins."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..utils.errors import ConfigError
from .args import AdapterArgs, GenerationArgs, InferArgs, ModelArgs
from .base import BaseConfig, arg


@dataclass
class DeployArgs(BaseConfig):
    host: str = arg("127.0.0.1", "Address to bind; 127.0.0.1 (default) serves this machine only, 0.0.0.0 all "
                    "interfaces (use --api_key then)")
    port: int = arg(8000, "Port to listen on")
    served_model_name: Optional[str] = arg(None, "Model name clients send and /v1/models lists (default: the "
                                           "model's folder or registered name)")
    api_key: Optional[str] = arg(None, "Require 'Authorization: Bearer KEY' on every route but /health")
    max_body_bytes: int = arg(10 * 1024 * 1024, "Largest accepted request body in bytes (larger: 413)")
    max_queue_size: int = arg(256, "Most requests waiting for a batch slot; beyond it requests get 429")
    allow_local_media: Optional[str] = arg(None, "Folder whose files requests may name as image/audio/video paths "
                                           "(default: local paths refused)")
    allow_private_media_urls: bool = arg(False, "Allow http(s) media URLs that point to loopback/private addresses")
    system: Optional[str] = arg(None, "System prompt for conversations that have none (default: the template's own)")
    max_length: Optional[int] = arg(None, "Longest prompt in tokens (longer prompts keep their last tokens; "
                                    "default: the model's context)")

    def _check_deploy_args(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be in 0..65535, got {self.port}")
        if self.max_body_bytes < 1024:
            raise ConfigError(f"--max_body_bytes must be at least 1024, got {self.max_body_bytes}")
        if self.max_queue_size < 1:
            raise ConfigError(f"--max_queue_size must be at least 1, got {self.max_queue_size}")


@dataclass
class DeployConfig(DeployArgs, InferArgs, GenerationArgs, AdapterArgs, ModelArgs):
    """Serve a model (and LoRA adapters) over an OpenAI-compatible HTTP API."""

    command = "deploy"

    def _check_deploy(self) -> None:
        if not (self.model or self.model_type or self.adapters):
            raise ConfigError("swiftall deploy: give --model (for example smollm2-135m-instruct), or --adapters DIR "
                              "of a swiftall run")

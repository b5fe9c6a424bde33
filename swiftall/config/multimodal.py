"""Flags for multimodal models: which parts train, their learning rates, and how media is sized and sampled."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ..utils.errors import ConfigError
from .base import BaseConfig, arg


@dataclass
class MultimodalArgs(BaseConfig):
    freeze_vit: bool = arg(True, "Multimodal models: keep the vision/audio encoder frozen (no LoRA on it, no "
                           "updates in full training)")
    freeze_aligner: bool = arg(True, "Multimodal models: keep the projector between encoder and language model "
                               "frozen")
    freeze_llm: bool = arg(False, "Multimodal models: keep the language model frozen (train only the encoder "
                           "and/or aligner)")
    vit_lr: Optional[float] = arg(None, "Learning rate of the vision/audio encoder (default: --learning_rate)")
    aligner_lr: Optional[float] = arg(None, "Learning rate of the aligner/projector (default: --learning_rate)")
    max_pixels: Optional[int] = arg(None, "Scale images (and video frames) down to at most this many pixels "
                                    "(width*height) before the processor sees them")
    min_pixels: Optional[int] = arg(None, "Scale smaller images up to at least this many pixels")
    fps: Optional[float] = arg(None, "Video: frames per second kept from each clip (default: every frame)")
    max_frames: Optional[int] = arg(None, "Video: most frames kept per clip, spread evenly")

    def _check_multimodal_args(self) -> None:
        for name in ("max_pixels", "min_pixels", "max_frames"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name} must be at least 1, got {value}")
        if self.max_pixels and self.min_pixels and self.min_pixels > self.max_pixels:
            raise ConfigError(f"--min_pixels {self.min_pixels} is larger than --max_pixels {self.max_pixels}")
        if self.fps is not None and self.fps <= 0:
            raise ConfigError(f"--fps must be > 0, got {self.fps}")
        for name in ("vit_lr", "aligner_lr"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"--{name} must be >= 0, got {value}")
        for lr, freeze in (("vit_lr", "freeze_vit"), ("aligner_lr", "freeze_aligner")):
            if getattr(self, lr) is not None and getattr(self, freeze, False):
                raise ConfigError(f"--{lr} is set but --{freeze} is true (its default), so that part would not "
                                  f"train and the rate would be ignored: add --{freeze} false, or drop --{lr}")

    def media_options(self) -> dict[str, Any]:
        """The keyword arguments `get_template` takes for media sizing and sampling."""
        return {"max_pixels": self.max_pixels, "min_pixels": self.min_pixels, "fps": self.fps,
                "max_frames": self.max_frames}

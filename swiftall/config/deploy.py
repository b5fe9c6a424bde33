"""`swiftall deploy`: the OpenAI-compatible server, composed from the inference sections."""
from __future__ import annotations

from ..utils.errors import ConfigError
from .base import Config
from .commands import MODEL
from .inference import BindSection, EngineSection, GenerationSection, SamplingSection, ServerSection
from .sections import AdapterSection, SeedSection, TemplateSection


class DeployConfig(Config):
    """Serve a model (and LoRA adapters) over an OpenAI-compatible HTTP API."""

    command = "deploy"
    sections = (*MODEL, AdapterSection, TemplateSection, BindSection, ServerSection, EngineSection, GenerationSection,
                SamplingSection, SeedSection)
    defaults = {"max_length": None}  # a served prompt may use the model's whole context

    def check(self) -> None:
        if not (self.section("model").given() or self.adapters):
            raise ConfigError("swiftall deploy: give --model (for example smollm2-135m-instruct), or --adapters DIR "
                              "of a swiftall run")

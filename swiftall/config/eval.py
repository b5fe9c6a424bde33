"""`swiftall eval`: how to score (what to score is EvalTaskSection, shared with evaluation during training)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..utils.errors import ConfigError
from .base import Config, Section, arg
from .commands import MODEL
from .eval_task import EvalTaskSection
from .inference import EngineSection
from .sections import AdapterSection, TemplateSection


@dataclass
class EvalRunSection(Section):
    name = "eval"
    title = "evaluation run"
    eval_backend: str = arg("native", "native (swiftall's engines), lm_eval (lm-evaluation-harness) or evalscope",
                            choices=("native", "lm_eval", "evalscope"))
    eval_url: Optional[str] = arg(None, "Score an OpenAI-compatible server (e.g. swiftall deploy) at this /v1 URL "
                                  "instead of loading a model")
    eval_api_key: Optional[str] = arg(None, "API key for --eval_url")
    eval_model: Optional[str] = arg(None, "Model name sent to --eval_url (default: the server's first model)")
    eval_seed: int = arg(42, "Seed for sampling items, few-shot examples and generation")
    eval_output_dir: str = arg("eval_output", "Runs go to <this>/<timestamp>/ (report.json, report.md, predictions/)")
    eval_concurrency: int = arg(64, "Requests in flight at once")
    eval_progress: bool = arg(True, "Show a progress bar with ETA")
    eval_list: bool = arg(False, "List the registered benchmarks and exit", aliases=("list",))
    resume: Optional[str] = arg(None, "Continue an interrupted run: true (the latest under --eval_output_dir) or its "
                                "folder")
    gpus: Optional[str] = arg(None, "CUDA devices to use (e.g. 0 or 0,1); ignored with a note on a CPU machine")

    def check(self) -> None:
        if self.eval_concurrency < 1:
            raise ConfigError(f"--eval_concurrency must be at least 1, got {self.eval_concurrency}")
        if self.resume is not None and self.resume.lower() in ("false", "0", "no"):
            self.resume = None


class EvalConfig(Config):
    """Score a model (local, with adapters, or any OpenAI-compatible --eval_url) on benchmarks or local files,
    offline, with a 95% interval on every score. `swiftall eval diff RUN_A RUN_B` compares two runs."""

    command = "eval"
    sections = (*MODEL, AdapterSection, TemplateSection, EvalTaskSection, EvalRunSection, EngineSection)

    def check(self) -> None:
        if self.eval_list:
            return
        if not self.eval_dataset:
            raise ConfigError("swiftall eval: --eval_dataset is required: a benchmark (swiftall eval --list), a local "
                              "file (JSONL/JSON/CSV), or NAME=path for a local copy of a benchmark")
        if not (self.section("model").given() or self.adapters or self.eval_url):
            raise ConfigError("swiftall eval: give --model (or --adapters DIR of a swiftall run), or --eval_url of a "
                              "running server")

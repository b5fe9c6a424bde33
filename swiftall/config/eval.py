"""`swiftall eval`: what to score (benchmarks or local files, shared with evaluation during training) and how."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..utils.errors import ConfigError
from .base import Config, Section, arg
from .commands import MODEL
from .inference import EngineSection
from .sections import AdapterSection, TemplateSection

EVAL_TYPES = ("qa", "math", "mcq", "caption", "vqa", "asr", "yesno")


@dataclass
class EvalTaskSection(Section):
    name = "eval_tasks"
    title = "what to score"
    eval_dataset: list[str] = arg([], "Benchmarks (swiftall eval --list), local files (JSONL/JSON/CSV), or "
                                  "NAME=path for a local copy of a benchmark; comma or space separated; 'NAME#N' "
                                  "takes N items")
    eval_limit: Optional[int] = arg(None, "Score at most this many items of each dataset (a seeded sample)")
    eval_type: Optional[str] = arg(None, "Metric set of local files (default: inferred from the rows)",
                                   choices=EVAL_TYPES)
    eval_generation_config: dict = arg({}, "Generation settings as JSON, e.g. '{\"max_tokens\": 64, "
                                       "\"temperature\": 0}' (default: greedy)")
    eval_num_fewshot: int = arg(0, "Examples from the dataset put before each question")
    eval_dataset_args: dict = arg({}, "Per-dataset settings as JSON: '{\"NAME\": {\"split\": ..., \"num_fewshot\": 5, "
                                  "\"max_new_tokens\": 64, \"allow_code_execution\": true}}'")
    dataset_revision: Optional[str] = arg(None, "Hub revision of benchmark datasets (recorded in the report)")
    eval_keep_think: bool = arg(False, "Score answers with their <think>...</think> text (default: stripped first)")
    eval_mcq_mode: str = arg("auto", "Multiple choice by log-likelihood of each choice or by generated letter "
                             "(auto: log-likelihood where the engine gives it)",
                             choices=("auto", "loglik", "generate"))

    def check(self) -> None:
        if self.eval_limit is not None and self.eval_limit < 1:
            raise ConfigError(f"--eval_limit must be at least 1, got {self.eval_limit}")
        if self.eval_num_fewshot < 0:
            raise ConfigError(f"--eval_num_fewshot must be >= 0, got {self.eval_num_fewshot}")


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

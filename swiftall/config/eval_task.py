"""What to score: benchmarks or local files, for `swiftall eval` and for evaluation during training
(`swiftall sft --eval_dataset NAME#N --eval_steps K`). Imports no other config module but base, so the training
configs can hold these sections too."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..utils.errors import ConfigError
from .base import Section, arg

EVAL_TYPES = ("qa", "math", "mcq", "caption", "vqa", "asr", "yesno")


@dataclass
class EvalTaskSection(Section):
    name = "eval_tasks"
    title = "what to score"
    eval_dataset: list[str] = arg([], "Benchmarks (swiftall eval --list), local files (JSONL/JSON/CSV), or "
                                  "NAME=path for a local copy of a benchmark; comma or space separated; 'NAME#N' "
                                  "takes N items. In sft: scored by generation every --eval_steps (the validation "
                                  "loss comes from --val_dataset)")
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
class TrainEvalSection(Section):
    name = "train_eval"
    title = "evaluation during training (--eval_dataset scored by generation every --eval_steps)"
    eval_dataset_on_start: bool = arg(False, "Also score --eval_dataset before the first step (a baseline for the "
                                      "curves)")
    eval_use_evalscope: bool = arg(False, "ms-swift's switch for --eval_dataset during training, accepted so its "
                                   "command lines run: swiftall scores --eval_dataset with its native evaluator "
                                   "whenever it is given (true without --eval_dataset is an error)")

"""Sections every model command shares: the model, adapters, plugins, the seed, the template, the data and where
a run writes. Each field is declared here once; commands pick the sections they use (config/commands.py)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..utils.errors import ConfigError
from .base import Section, arg

DTYPES = ("auto", "float32", "bfloat16", "float16")
ATTN = ("sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")
# What rows are checked for (prepare/template show --task); swiftall.data.registry's TASKS adds dataset-only kinds
TASKS = ("sft", "pt", "rlhf", "kto", "grpo")


@dataclass
class ModelSection(Section):
    name = "model"
    title = "model"
    model: Optional[str] = arg(None, "Model: a local folder, a .gguf file, a registered name (swiftall model list), "
                               "a Hugging Face id or a ModelScope id", aliases=("model_id_or_path", "model_path"))
    model_type: Optional[str] = arg(None, "Registered model name; alone it selects that model, with --model it names "
                                    "the family/template to use")
    hub: str = arg("huggingface", "Where model ids are fetched from", choices=("huggingface", "modelscope"))
    use_hf: Optional[bool] = arg(None, "ms-swift's switch: true means --hub huggingface, false --hub modelscope")
    revision: Optional[str] = arg(None, "Hub revision (branch, tag or commit) of the model")
    torch_dtype: str = arg("auto", "Weights dtype; auto is bfloat16 on GPUs that support it, else float32",
                           choices=DTYPES, aliases=("dtype",))
    attn_impl: Optional[str] = arg(None, "Attention implementation (default: sdpa)", choices=ATTN)
    use_flash_attn: Optional[bool] = arg(None, "ms-swift's switch for --attn_impl flash_attention_2; on a machine "
                                         "without flash-attn it falls back to sdpa with a note")
    trust_remote_code: bool = arg(False, "Run Python code shipped with a model repo (explicit opt-in)")

    def check(self) -> None:
        if self.use_hf is not None:
            self.hub = "huggingface" if self.use_hf else "modelscope"
        if self.use_flash_attn and not self.attn_impl:
            self.attn_impl = "flash_attention_2"

    def given(self) -> bool:
        return bool(self.model or self.model_type)


@dataclass
class AdapterSection(Section):
    name = "adapters"
    title = "adapters"
    adapters: list[str] = arg([], "LoRA adapter folders: a run folder or one of its checkpoint-N folders; "
                              "name=DIR names them for deploy", aliases=("ckpt_dir",))


@dataclass
class CommonSection(Section):
    name = "common"
    title = "common"
    plugin: list[str] = arg([], "Python files run once before anything is resolved; they may register models, "
                            "templates, datasets, reward functions and metrics", aliases=("external_plugins",))
    verbose: bool = arg(False, "Show library warnings and debug logs that are hidden by default")


@dataclass
class SeedSection(Section):
    name = "seed"
    title = "seed"
    seed: int = arg(42, "Random seed (training order and initialisation, or sampling)")


@dataclass
class TemplateSection(Section):
    name = "template"
    title = "template"
    system: Optional[str] = arg(None, "System prompt for conversations that have none (default: the template's own)")
    max_length: Optional[int] = arg(2048, "Longest encoded row (training) or prompt (inference) in tokens")

    def check(self) -> None:
        if self.max_length is not None and self.max_length < 8:
            raise ConfigError(f"--max_length must be at least 8 tokens, got {self.max_length}")


@dataclass
class DataSection(Section):
    name = "data"
    title = "data"
    dataset: list[str] = arg([], "Data: files (jsonl/json/csv/parquet), folders, registered names or hub ids; "
                             "'file#N' samples N rows", aliases=("train_dataset", "custom_train_dataset_path"))
    val_dataset: list[str] = arg([], "Validation data, same forms as --dataset", aliases=("custom_val_dataset_path",))
    strict: bool = arg(True, "Stop on any bad row (true) or skip bad rows and report them (false)")
    columns: dict = arg({}, "Rename columns, as JSON: '{\"q\": \"query\", \"a\": \"response\"}'")
    model_name: list[str] = arg([], "For self-cognition data: the model's name (e.g. 'Swifty')")
    model_author: list[str] = arg([], "For self-cognition data: the model's author (e.g. 'the swiftall team')")
    data_seed: int = arg(42, "Seed for sampling ('name#N') and splitting data")
    custom_dataset_info: list[str] = arg([], "Register your own datasets from a dataset_info.json/.yaml "
                                         "(ms-swift list or LLaMA-Factory mapping)")


@dataclass
class EncodeSection(Section):
    name = "encode"
    title = "encoding training data"
    split_dataset_ratio: float = arg(0.0, "Fraction of --dataset held out for validation when --val_dataset is empty")
    truncation_strategy: str = arg("delete", "For rows over --max_length: delete (drop, reported), left/right "
                                   "(cut tokens there), error (stop)", choices=("delete", "left", "right", "error"))
    dataset_num_proc: int = arg(1, "Processes used to encode data (datasets' parallel map)", aliases=("num_proc",))
    streaming: bool = arg(False, "Read and encode data as a stream written to disk (memory-mapped), for data larger "
                          "than memory; 'name#N' then takes the first N rows")
    lazy_tokenize: Optional[bool] = arg(None, "Encode rows only when training asks for them (default: true for "
                                        "multimodal templates, false otherwise)")
    load_from_cache_file: bool = arg(True, "Reuse encoded data cached by an earlier run with the same tokenizer, "
                                     "template, max_length and data")
    dataset_cache_dir: Optional[str] = arg(None, "Where encoded data is cached (default: <swiftall cache>/datasets)")

    def check(self) -> None:
        if not 0.0 <= self.split_dataset_ratio < 1.0:
            raise ConfigError(f"--split_dataset_ratio must be in [0, 1), got {self.split_dataset_ratio}")
        if self.dataset_num_proc < 1:
            raise ConfigError(f"--dataset_num_proc must be at least 1, got {self.dataset_num_proc}")


@dataclass
class OutputSection(Section):
    name = "output"
    title = "output"
    output_dir: Optional[str] = arg(None, "Where the command writes its results (training default: "
                                    "output/<model>-<time>); never overwritten unless --overwrite_output_dir")
    overwrite_output_dir: bool = arg(False, "Allow writing into a non-empty --output_dir", aliases=("overwrite",))

    def check(self) -> None:
        if self.output_dir and Path(self.output_dir).expanduser().exists() and \
                not Path(self.output_dir).expanduser().is_dir():
            raise ConfigError(f"--output_dir {self.output_dir}: a file of that name exists; name a folder")


@dataclass
class TaskSection(Section):
    name = "task"
    title = "task"
    task: str = arg("sft", "What the data will train; decides which rows are valid (sft needs a final assistant "
                    "answer, rlhf a rejected answer, kto a label, grpo a prompt, pt plain text)", choices=TASKS)

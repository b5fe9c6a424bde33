"""Named datasets: small ones shipped in the package, and well-known hub datasets."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..utils.errors import ConfigError


@dataclass(frozen=True)
class DatasetMeta:
    name: str
    description: str
    builtin_file: Optional[str] = None   # a file inside swiftall/data/builtin
    hf_id: Optional[str] = None
    ms_id: Optional[str] = None
    needs_model_name: bool = False       # rows carry {{NAME}}/{{AUTHOR}} placeholders


DATASETS: dict[str, DatasetMeta] = {}


def register_dataset(meta: DatasetMeta) -> DatasetMeta:
    if meta.name in DATASETS:
        raise ConfigError(f"dataset '{meta.name}' is already registered")
    DATASETS[meta.name] = meta
    return meta


def get_dataset(name: str) -> Optional[DatasetMeta]:
    return DATASETS.get(name)


def builtin_path(meta: DatasetMeta) -> Path:
    return Path(__file__).parent / "builtin" / meta.builtin_file


for _meta in [
    DatasetMeta("swiftall-demo", "small bundled SFT set (short questions and answers)", builtin_file="demo.jsonl"),
    DatasetMeta("self-cognition", "who-are-you questions; fill in --model_name and --model_author",
                builtin_file="self_cognition.jsonl", hf_id="modelscope/self-cognition",
                ms_id="swift/self-cognition", needs_model_name=True),
    DatasetMeta("alpaca-gpt4-en", "52k GPT-4 answers to Alpaca instructions", hf_id="vicgalle/alpaca-gpt4",
                ms_id="AI-ModelScope/alpaca-gpt4-data-en"),
    DatasetMeta("alpaca-gpt4-zh", "Chinese GPT-4 Alpaca answers", hf_id="shibing624/alpaca-zh",
                ms_id="AI-ModelScope/alpaca-gpt4-data-zh"),
]:
    register_dataset(_meta)

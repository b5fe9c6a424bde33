"""Merge LoRA adapters into the base weights and save a folder transformers loads on its own."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..models import ModelInfo, load_model, load_tokenizer
from ..tuners import attach_adapters
from ..tuners.adapters import check_mergeable


def merge_lora(info: ModelInfo, adapters: Sequence[str], output_dir: Path, torch_dtype: str = "auto",
               trust_remote_code: bool = False) -> Path:
    check_mergeable(adapters)  # before anything loads
    from ..models.tasks import TaskSpec

    spec = TaskSpec.of_run(adapters[0]) if adapters else None
    if spec is not None:  # a --task_type seq_cls/embedding/reranker run: its own head and files
        from .tasks import merge_task

        return merge_task(info, spec, adapters, output_dir, torch_dtype, trust_remote_code)
    model = load_model(info, torch_dtype, None, trust_remote_code, device="cpu")
    tokenizer = load_tokenizer(info, trust_remote_code)
    model = attach_adapters(model, adapters)
    merged: Any = model.merge_and_unload()
    output_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    if getattr(merged, "generation_config", None) is not None:
        merged.generation_config.save_pretrained(output_dir)
    return output_dir

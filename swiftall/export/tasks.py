"""Merged exports of task runs (`--task_type seq_cls|embedding|reranker`): the classifier saves as a
`*ForSequenceClassification` folder transformers loads with its labels; the embedding model saves as its backbone
plus sentence-transformers' module files (pooling, normalisation), so `SentenceTransformer(dir)` gives the vectors
swiftall gives (a multimodal model's texts; its images are embedded by swiftall, which the folder loads in)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ..models import load_tokenizer
from ..models.device import resolve_dtype
from ..models.tasks import TaskSpec, hidden_size, load_task_model
from ..utils.log import get_logger

logger = get_logger(__name__)


def merge_task(info: Any, spec: TaskSpec, adapters: Sequence[str], output_dir: Path, torch_dtype: str = "auto",
               trust_remote_code: bool = False) -> Path:
    from peft import PeftModel
    from transformers import AutoTokenizer

    adapter = adapters[0].split("=", 1)[-1]
    source = adapter if (Path(adapter) / "tokenizer_config.json").is_file() else info.path
    if info.family is not None and info.family.multimodal:  # the processor too, saved with the tokenizer
        tokenizer = load_tokenizer(info, trust_remote_code)
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(source), trust_remote_code=trust_remote_code)
    model = load_task_model(info.path, spec, resolve_dtype(torch_dtype), None, trust_remote_code,
                            tokenizer.pad_token_id or tokenizer.eos_token_id)
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    output_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    spec.save(output_dir)
    if spec.task_type == "embedding":
        write_sentence_transformers(output_dir, spec)
        if info.family is not None and info.family.multimodal:
            logger.info(f"{output_dir}: SentenceTransformer(dir) embeds texts only (its modules declare the text "
                        "modality: sentence-transformers renders images its own way); embed images with swiftall "
                        "(InferEngine(dir).embed, swiftall deploy), which gives the adapter's vectors")
    return output_dir


def write_sentence_transformers(folder: Path, spec: TaskSpec) -> None:
    """modules.json, sentence_bert_config.json, 1_Pooling/config.json and 2_Normalize: Transformer -> Pooling
    (--pooling) -> Normalize, as sentence-transformers saves a model."""
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
    _write(folder / "modules.json", modules)
    _write(folder / "sentence_bert_config.json", {"max_seq_length": spec.max_length or 512, "do_lower_case": False})
    _write(folder / "config_sentence_transformers.json", {"similarity_fn_name": "cosine", "prompts": {},
                                                          "default_prompt_name": None})
    pooling = {"word_embedding_dimension": hidden_size(folder), "pooling_mode_cls_token": spec.pooling == "cls",
               "pooling_mode_mean_tokens": spec.pooling == "mean", "pooling_mode_max_tokens": False,
               "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_weightedmean_tokens": False,
               "pooling_mode_lasttoken": spec.pooling == "last", "include_prompt": True}
    (folder / "1_Pooling").mkdir(exist_ok=True)
    _write(folder / "1_Pooling" / "config.json", pooling)
    (folder / "2_Normalize").mkdir(exist_ok=True)


def _write(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")

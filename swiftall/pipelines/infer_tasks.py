"""swiftall infer / deploy / InferEngine for embedding, classification and reranker models: the engine, and what
`swiftall infer` prints (--query) or writes (--val_dataset rows -> --result_path)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

from ..data import read_rows
from ..data.convert import rename_columns
from ..infer.tasks import TaskEngine, detect_task
from ..models.tasks import MEDIA_KINDS, TaskSpec, is_media, media_kinds
from ..train.tasks.rows import anchor_item
from ..utils.errors import ConfigError, DataError
from ..utils.log import get_logger
from .common import check_media_before_loading, model_info

logger = get_logger(__name__)


def task_spec(cfg: Any, info: Any = None, task_type: Optional[str] = None,
              pooling: Optional[str] = None) -> Optional[TaskSpec]:
    """The task of the run/folder being served, or None for a chat model (read from files: nothing resolves)."""
    path = info.path if info is not None else cfg.model
    return detect_task(path, cfg.adapters, task_type, pooling)


def build_task_engine(cfg: Any, info: Any, spec: TaskSpec) -> TaskEngine:
    return TaskEngine.from_pretrained(info.path, cfg.adapters, spec, torch_dtype=cfg.torch_dtype,
                                      attn_impl=cfg.attn_impl, trust_remote_code=cfg.trust_remote_code,
                                      max_batch_size=getattr(cfg, "max_batch_size", 16) or 16,
                                      max_length=getattr(cfg, "max_length", None), info=info,
                                      media_options=cfg.media_options() if hasattr(cfg, "media_options") else None)


def task_infer(cfg: Any, spec: TaskSpec) -> Any:
    """--query: print the label/vector (reranker: give rows instead); --val_dataset: one result row per row."""
    specs = cfg.val_dataset or cfg.dataset
    rows = [_row(r, cfg, spec) for r in read_rows(specs, cfg)] if specs else None  # bad rows fail before loading
    kinds = {k for _, item in rows or [] if is_media(item) for k in media_kinds(item)}
    check_media_before_loading(cfg, {k: [k] for k in kinds})  # images for a text-only model
    if rows is None and (cfg.query is None or spec.task_type == "reranker"):
        need = "--val_dataset rows {query, documents}" if spec.task_type == "reranker" else "--query TEXT or " \
            "--val_dataset rows"
        raise ConfigError(f"swiftall infer on a {spec.task_type} model: give {need}")
    engine = build_task_engine(cfg, model_info(cfg), spec)
    if rows is None:
        result = _answer(engine, spec, [cfg.query])[0]
        print(_shown(result, spec))
        return result
    answers = _answer(engine, spec, [r[1] for r in rows])
    path = Path(cfg.result_path) if cfg.result_path else Path(cfg.adapters[0] if cfg.adapters else ".") / \
        "infer_result" / f"{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    out = [{**original, **answer} for (original, _), answer in zip(rows, answers)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out))
    logger.info(f"{len(out)} results written to {path}")
    return out


def _row(row: Any, cfg: Any, spec: TaskSpec) -> tuple[dict, Any]:
    original = dict(row.data)
    rename_columns(row, cfg.columns)
    data = row.data
    if spec.task_type == "embedding" and any(data.get(f"{p}{k}") for p in ("", "query_", "anchor_")
                                             for k in MEDIA_KINDS):
        return original, anchor_item(row)[1]  # the query with its images (paths checked, relative to the file)
    text = next((data[k] for k in ("query", "text", "anchor", "messages") if data.get(k)), None)
    if text is None:
        raise DataError(f"{row.where}: no text: give 'query', 'text' or 'messages'")
    if spec.task_type != "reranker":
        return original, text
    docs = data.get("documents") or [*_list(data.get("positive")), *_list(data.get("negative"))]
    if not docs:
        raise DataError(f"{row.where}: a reranker row needs 'documents' (or 'positive'/'negative') to rank")
    return original, (text, docs)


def _list(value: Any) -> list:
    return [] if value is None else value if isinstance(value, list) else [value]


def _answer(engine: TaskEngine, spec: TaskSpec, items: list) -> list[dict]:
    if spec.task_type == "embedding":
        return [{"embedding": v} for v in engine.embed(items)]
    if spec.task_type == "seq_cls":
        return engine.classify(items)
    return [{"results": engine.rerank(q, docs)} for q, docs in items]


def _shown(result: dict, spec: TaskSpec) -> str:
    if spec.task_type == "embedding":
        v = result["embedding"]
        return json.dumps(v)
    if spec.problem_type == "regression":
        return f"score {result['score']:.4f}"
    return f"label {result['label']} (score {result['score']:.4f})"

"""Routes of models that do not generate: /v1/rerank (Cohere/Jina/vLLM's shape: query, documents, top_n ->
results[{index, relevance_score}]) and /v1/classify (vLLM's shape: input -> data[{index, label, probs}]).
/v1/embeddings is the OpenAI route in app.py; an embedding model's engine answers it."""
from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Optional, Union

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from ..utils.errors import ConfigError
from .errors import ApiError


class RerankRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: Optional[str] = None
    query: str
    documents: list[Union[str, dict[str, Any]]]
    top_n: Optional[int] = Field(None, ge=1)
    return_documents: bool = False


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: Optional[str] = None
    input: Union[str, list[str]]


def shortened(vector: list[float], dims: Optional[int]) -> list[float]:
    """The first `dims` values of a vector, normalised again (OpenAI's `dimensions` gives unit vectors)."""
    if not dims or dims >= len(vector):
        return vector
    head = vector[:dims]
    norm = sum(x * x for x in head) ** 0.5 or 1.0
    return [x / norm for x in head]


def _document(doc: Union[str, dict[str, Any]], i: int) -> str:
    text = doc if isinstance(doc, str) else doc.get("text")
    if not isinstance(text, str) or not text:
        raise ApiError(400, f"documents[{i}]: give a non-empty text (or an object with 'text')", f"documents.{i}",
                       "invalid_value")
    return text


async def _call(engine: Any, name: str, *args: Any) -> Any:
    method = getattr(engine, name, None)
    if method is None:
        raise ApiError(400, f"this model does not {name}: serve a model trained with swiftall sft --task_type "
                       f"{'reranker' if name == 'rerank' else 'seq_cls'}", "model", "unsupported")
    try:
        return await asyncio.to_thread(method, *args)
    except ConfigError as exc:
        raise ApiError(400, str(exc), "model", "unsupported") from None


def _tokens(engine: Any, texts: list[str]) -> int:
    tokenizer = getattr(engine, "tokenizer", None)
    return sum(len(tokenizer(t)["input_ids"]) for t in texts) if tokenizer is not None else 0


def install_task_routes(app: FastAPI, handlers: Any) -> None:
    engine = handlers.engine

    async def rerank(body: RerankRequest) -> dict[str, Any]:
        docs = [_document(d, i) for i, d in enumerate(body.documents)]
        results = await _call(engine, "rerank", body.query, docs, body.top_n)
        if body.return_documents:
            results = [{**r, "document": {"text": docs[r["index"]]}} for r in results]
        tokens = _tokens(engine, [body.query, *docs])
        return {"id": f"rerank-{uuid.uuid4().hex}", "model": body.model or handlers.settings.served_model_name,
                "results": results, "usage": {"total_tokens": tokens}}

    async def classify(body: ClassifyRequest) -> dict[str, Any]:
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        if not texts or not all(texts):
            raise ApiError(400, "input: give non-empty texts", "input", "invalid_value")
        results = await _call(engine, "classify", texts)
        data = [{"index": i, "label": r["label"], "probs": r["scores"], "num_classes": len(r["scores"])}
                for i, r in enumerate(results)]
        tokens = _tokens(engine, texts)
        return {"id": f"classify-{uuid.uuid4().hex}", "object": "list", "created": int(time.time()),
                "model": body.model or handlers.settings.served_model_name, "data": data,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    for path in ("/v1/rerank", "/rerank", "/v2/rerank"):
        app.post(path)(rerank)
    for path in ("/v1/classify", "/classify"):
        app.post(path)(classify)

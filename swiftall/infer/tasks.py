"""An Engine for models that do not generate: embedding (`embed`), sequence classification (`classify`) and
reranker (`rerank`) models, trained with `swiftall sft --task_type ...` or given as a folder.

Texts are encoded, pooled and scored by swiftall.models.tasks, the code training used, so a served model gives
the vectors and scores it was evaluated with; items with images, audio or video (`embed` on a multimodal model)
are encoded by its processor as training encoded them (templates/task_media.py). Which task a folder holds is read
from the run (`swiftall_task.json`), else from the folder itself (a `*ForSequenceClassification` config, or a
sentence-transformers `modules.json`)."""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from ..models.tasks import (TaskSpec, embed_batch, encode, encode_pairs, is_media, load_task_model, pad,
                            pair_scorer, scores_batch, truncate_dims)
from ..templates.task_media import as_item, media_encoder
from ..utils.errors import ConfigError
from .engine import Engine, InferResponse, RequestConfig


def detect_task(model_path: Any, adapters: Sequence[str] = (), task_type: Optional[str] = None,
                pooling: Optional[str] = None) -> Optional[TaskSpec]:
    """The task of --adapters' run, or of the model folder; None for a causal LM (unless task_type names one)."""
    spec = None
    for adapter in list(adapters)[:1]:
        spec = TaskSpec.of_run(adapter)
    if spec is None and model_path and Path(model_path).is_dir():
        spec = TaskSpec.load(model_path) or _from_folder(Path(model_path))
    head = "score"
    if task_type == "generative_reranker":
        task_type, head = "reranker", "yes_no"
    if task_type and task_type != "causal_lm" and (spec is None or (spec.task_type, spec.reranker_head) !=
                                                   (task_type, head)):
        spec = TaskSpec(task_type, reranker_head=head)
    if spec is not None and pooling:
        spec.pooling = pooling
    return spec


def _from_folder(folder: Path) -> Optional[TaskSpec]:
    config = folder / "config.json"
    data = json.loads(config.read_text()) if config.is_file() else {}
    if any(a.endswith("ForSequenceClassification") for a in data.get("architectures") or []):
        labels = data.get("id2label") or {"0": "0"}
        names = [labels[k] for k in sorted(labels, key=int)]
        kind = "reranker" if len(names) == 1 and data.get("problem_type") is None else "seq_cls"
        return TaskSpec(kind, num_labels=len(names), problem_type=data.get("problem_type"), label_names=names)
    pooling = folder / "1_Pooling" / "config.json"
    if (folder / "modules.json").is_file() and pooling.is_file():
        modes = json.loads(pooling.read_text())
        how = "mean" if modes.get("pooling_mode_mean_tokens") else "cls" if modes.get("pooling_mode_cls_token") \
            else "last"
        return TaskSpec("embedding", pooling=how)
    return None


class TaskEngine(Engine):
    """embed / classify / rerank over one model (and at most one adapter); `infer` is refused by name."""

    embeds_messages = True  # /v1/embeddings may send chat messages (with media) as one item

    def __init__(self, model: Any, tokenizer: Any, spec: TaskSpec, max_batch_size: int = 16,
                 max_length: Optional[int] = None, media: Any = None):
        self.model, self.tokenizer, self.spec = model.eval(), tokenizer, spec
        self.max_batch_size = max(1, max_batch_size)
        self.max_length = max_length or spec.max_length
        self.media = media if media is not None else media_encoder(tokenizer, None, self.max_length)
        self.lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, model_path: Any, adapters: Sequence[str] = (), spec: Optional[TaskSpec] = None,
                        torch_dtype: str = "auto", attn_impl: Optional[str] = None, trust_remote_code: bool = False,
                        max_batch_size: int = 16, max_length: Optional[int] = None, tokenizer: Any = None,
                        device: Optional[str] = None, info: Any = None,
                        media_options: Optional[dict[str, Any]] = None) -> "TaskEngine":
        """`info`: the model's ModelInfo (resolved from the folder when not given); a multimodal family loads its
        processor, which encodes items with media. `media_options`: max_pixels, min_pixels, fps, max_frames."""
        from ..models.device import default_device, resolve_attn, resolve_dtype

        spec = spec or detect_task(model_path, adapters)
        if spec is None:
            raise ConfigError(f"{model_path}: not an embedding, classification or reranker model; give task_type")
        if len(adapters) > 1:
            raise ConfigError(f"a {spec.task_type} model is served with one adapter, got {len(adapters)}")
        if info is None and Path(str(model_path)).is_dir():
            from ..models import resolve_model

            info = resolve_model(str(model_path))
        family = getattr(info, "family", None)
        if tokenizer is None and family is not None and family.multimodal:
            from ..models import load_tokenizer

            tokenizer = load_tokenizer(info, trust_remote_code)  # the processor's, with the processor attached
        if tokenizer is None:
            from transformers import AutoTokenizer

            source = adapters[0].split("=", 1)[-1] if adapters and _has_tokenizer(adapters[0]) else model_path
            tokenizer = AutoTokenizer.from_pretrained(str(source), trust_remote_code=trust_remote_code)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = load_task_model(model_path, spec, resolve_dtype(torch_dtype), resolve_attn(attn_impl),
                                trust_remote_code, tokenizer.pad_token_id)
        if adapters:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapters[0].split("=", 1)[-1])
        max_length = max_length or spec.max_length
        media = media_encoder(tokenizer, info, max_length, media_options)
        return cls(model.to(device or default_device()), tokenizer, spec, max_batch_size, max_length, media)

    # ---- the three calls --------------------------------------------------------------------------
    def embed(self, texts: Sequence[Any], adapter: Optional[str] = None, dimensions: Optional[int] = None
              ) -> list[list[float]]:
        """One L2-normalised vector per item; `dimensions` keeps the first N, normalised. An item is a text, a
        list of {role, content} messages, or (a multimodal model) an item with media: a dict {"text"|"messages",
        "images", "audios", "videos"} (paths, URLs, data URLs, PIL images) or messages whose content holds
        `<image>` tags or OpenAI content parts (`image_url`, ...). Text and media items may share a call."""
        self._need("embedding", "embed")
        items = [as_item(item, f"item {i}") for i, item in enumerate(texts)]
        for item in items:
            if is_media(item):
                self.media.check(item, item["source"])
        vectors = self._run(lambda m, b: embed_batch(m, b, self.spec.pooling), encode(self.tokenizer, items,
                                                                                       self.max_length))
        return truncate_dims(vectors, dimensions).tolist()

    def classify(self, texts: Sequence[Any]) -> list[dict[str, Any]]:
        """Per text: label (name), index, score (its probability) and scores (every class's probability; for
        regression the predicted values)."""
        self._need("seq_cls", "classify")
        logits = self._run(scores_batch, encode(self.tokenizer, texts, self.max_length))
        kind = self.spec.problem_type
        if kind == "regression":
            return [{"label": None, "index": None, "score": row[0].item(), "scores": row.tolist()} for row in logits]
        probs = logits.sigmoid() if kind == "multi_label_classification" else logits.softmax(-1)
        out = []
        for row in probs:
            index = int(row.argmax())
            item = {"label": self.spec.label_name(index), "index": index, "score": row[index].item(),
                    "scores": row.tolist()}
            if kind == "multi_label_classification":
                item["labels"] = [self.spec.label_name(i) for i, p in enumerate(row.tolist()) if p > 0.5]
            out.append(item)
        return out

    def rerank(self, query: Any, documents: Sequence[Any], top_n: Optional[int] = None) -> list[dict[str, Any]]:
        """Documents ordered by relevance to the query: [{index, relevance_score}] (a sigmoid of the score: for a
        generative reranker the probability of "yes" against "no"), the top_n first."""
        self._need("reranker", "rerank")
        pairs = encode_pairs(self.tokenizer, self.spec, query, documents, self.max_length)
        scorer = pair_scorer(self.spec, self.tokenizer)
        scores = self._run(scorer, pairs)[:, 0].sigmoid().tolist() if pairs else []
        ranked = sorted(({"index": i, "relevance_score": s} for i, s in enumerate(scores)),
                        key=lambda r: -r["relevance_score"])
        return ranked[:top_n] if top_n else ranked

    def _need(self, task: str, call: str) -> None:
        if self.spec.task_type != task:
            raise ConfigError(f"this is a {self.spec.task_type} model; {call} needs {'an' if task[0] == 'e' else 'a'} "
                              f"{task} model "
                              f"({_CALLS[self.spec.task_type]} is what it does)")

    def _run(self, fn: Any, rows: list[Any]) -> Any:
        """fn over the rows (token ids, or media items encoded here batch by batch), stacked."""
        import torch

        device = next(self.model.parameters()).device
        out = []
        with self.lock, torch.inference_mode():
            for i in range(0, len(rows), self.max_batch_size):
                chunk = self.media.rows(rows[i: i + self.max_batch_size])
                batch = {k: v.to(device) for k, v in pad(chunk, self.tokenizer.pad_token_id).items()}
                out.append(fn(self.model, batch).float().cpu())
        return torch.cat(out) if out else torch.zeros((0, 1))

    # ---- the Engine interface ---------------------------------------------------------------------
    def infer(self, requests: list[Any], config: Optional[RequestConfig] = None) -> list[InferResponse]:
        raise NotImplementedError(self._no_generation())

    def stream(self, request: Any, config: Optional[RequestConfig] = None) -> Iterator[str]:
        raise NotImplementedError(self._no_generation())

    def _no_generation(self) -> str:
        return (f"this is a {self.spec.task_type} model: it does not generate text; use "
                f"{_CALLS[self.spec.task_type]}")

    def count_prompt_tokens(self, request: Any) -> Optional[int]:
        text = getattr(request, "prompt", None)
        return len(self.tokenizer(text)["input_ids"]) if text else None


_CALLS = {"embedding": "embed (/v1/embeddings)", "seq_cls": "classify (/v1/classify)",
          "reranker": "rerank (/v1/rerank)"}


def _has_tokenizer(adapter: str) -> bool:
    return (Path(adapter.split("=", 1)[-1]) / "tokenizer_config.json").is_file()

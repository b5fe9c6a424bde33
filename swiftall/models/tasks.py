"""Models that are not chat models, shared by training, inference and export so that all three encode, pool and
score a text the same way.

- seq_cls / reranker: transformers' `AutoModelForSequenceClassification` (a `score` head on the last non-pad
  token); a reranker is a 1-output classifier over "query + document" texts.
- generative reranker (`--task_type generative_reranker`, a reranker with `reranker_head: yes_no`): the chat model
  itself, asked whether the document answers the query; its score is the "yes" logit minus the "no" logit at the
  answer's first position, so it starts from what the model knows instead of a fresh head.
- embedding: the backbone (`AutoModel`, no LM head) and a pooling of its last hidden states (last token, mean or
  first token), L2-normalised. Texts are tokenized as the tokenizer does by default (no extra tokens), which is
  also what sentence-transformers does, so an exported model gives the same vectors there. An item with images,
  audio or video (a media item, `{"messages": [...], "images": [...], ...}`) is encoded by the multimodal model's
  processor (templates/task_media.py) into input ids plus its media tensors (pixel values, grid sizes), which
  `pad` batches beside text rows and the backbone's forward takes.

`TaskSpec` is what a run records (`swiftall_task.json` beside the weights) so infer, deploy and export know it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from ..utils.errors import ConfigError

TASK_FILE = "swiftall_task.json"
Text = Union[str, list, dict]  # a text, a list of {role, content} messages, or a media item
MEDIA_KINDS = ("images", "audios", "videos")


def is_media(item: Any) -> bool:
    """A media item: {"messages": [...], "images"|"audios"|"videos": [...]} (not yet encoded)."""
    return isinstance(item, dict) and "messages" in item


def media_kinds(item: Any) -> list[str]:
    return [k for k in MEDIA_KINDS if is_media(item) and item.get(k)]


@dataclass
class TaskSpec:
    task_type: str
    pooling: str = "last"
    num_labels: int = 1
    problem_type: Optional[str] = None
    label_names: list[str] = field(default_factory=list)
    max_length: Optional[int] = None
    mrl_dims: list[int] = field(default_factory=list)
    reranker_head: str = "score"

    @classmethod
    def from_config(cls, cfg: Any) -> "TaskSpec":
        labels = cfg.num_labels if cfg.task_type == "seq_cls" else 1
        return cls(cfg.task_type, cfg.pooling, labels or 1, cfg.problem_type if cfg.task_type == "seq_cls" else None,
                   list(cfg.label_names), cfg.max_length, list(cfg.mrl_dims), cfg.reranker_head)

    @property
    def generative(self) -> bool:
        return self.task_type == "reranker" and self.reranker_head == "yes_no"

    def save(self, folder: Union[str, Path]) -> None:
        (Path(folder) / TASK_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Union[str, Path]) -> Optional["TaskSpec"]:
        path = Path(folder) / TASK_FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @classmethod
    def of_run(cls, adapter: str) -> Optional["TaskSpec"]:
        """The task of an --adapters value (a run folder, name=DIR, or a checkpoint-N inside a run)."""
        folder = Path(adapter.split("=", 1)[-1])
        if folder.name == "adapter_config.json":
            folder = folder.parent
        return cls.load(folder) or cls.load(folder.parent)

    def label_name(self, index: int) -> str:
        return self.label_names[index] if index < len(self.label_names) else str(index)


def hidden_size(model_path: Union[str, Path]) -> Optional[int]:
    """The text model's hidden size from config.json, without loading weights."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(model_path))
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text, "hidden_size", None)


# ---- texts -> token ids ----------------------------------------------------------------------------
def render(tokenizer: Any, item: Text) -> str:
    """A text as is; one message as its content; a conversation through the tokenizer's chat template."""
    if isinstance(item, str):
        return item
    if len(item) == 1:
        return str(item[0].get("content", ""))
    return tokenizer.apply_chat_template(item, tokenize=False)


def pair_text(query: str, document: str) -> str:
    """The one text a reranker scores for a (query, document) pair."""
    return f"Query: {query}\nDocument: {document}"


def encode(tokenizer: Any, items: Sequence[Text], max_length: Optional[int] = None) -> list[Any]:
    """Token ids of each text item; media items are passed on as they are (the processor encodes them when their
    batch is built, templates/task_media.py)."""
    texts = [render(tokenizer, item) for item in items if not is_media(item)]
    ids = iter(tokenizer(texts, add_special_tokens=True)["input_ids"] if texts else [])
    out: list[Any] = []
    for item in items:
        if is_media(item):
            out.append(item)
            continue
        row = next(ids)
        out.append(row[:max_length] if max_length else row)
    return out


JUDGE_SYSTEM = ('Judge whether the Document meets the requirements based on the Query provided. Note that the answer '
                'can only be "yes" or "no".')
_DOCUMENT = "\x00document\x00"


def encode_pairs(tokenizer: Any, spec: "TaskSpec", query: Text, documents: Sequence[Text],
                 max_length: Optional[int] = None) -> list[list[int]]:
    """The token ids a reranker scores for each (query, document) pair. The generative reranker's chat prompt ends
    where the answer starts; a long document is cut inside, keeping that end (max_length counts it)."""
    query, documents = render(tokenizer, query), [render(tokenizer, d) for d in documents]
    if not spec.generative:
        return encode(tokenizer, [pair_text(query, d) for d in documents], max_length)
    messages = [{"role": "system", "content": JUDGE_SYSTEM},
                {"role": "user", "content": f"<Query>: {query}\n<Document>: {_DOCUMENT}"}]
    try:
        head, tail = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True).split(
            _DOCUMENT)
    except ValueError as exc:  # no chat template
        raise ConfigError(f"--task_type generative_reranker asks a chat model for yes/no, but the tokenizer has no "
                          f"usable chat template ({str(exc).splitlines()[0]}); use --task_type reranker") from None
    tail_ids = tokenizer(tail, add_special_tokens=False)["input_ids"]
    keep = max(1, max_length - len(tail_ids)) if max_length else None
    return [row[:keep] + tail_ids for row in tokenizer([head + d for d in documents],
                                                       add_special_tokens=False)["input_ids"]]


def yes_no_ids(tokenizer: Any) -> list[int]:
    ids = [tokenizer(word, add_special_tokens=False)["input_ids"] for word in ("yes", "no")]
    if any(len(i) != 1 for i in ids):
        raise ConfigError(f"--task_type generative_reranker scores the 'yes' and 'no' tokens, but this tokenizer "
                          f"splits them into {ids}; use --task_type reranker")
    return [ids[0][0], ids[1][0]]


def pad(rows: Sequence[Any], pad_id: int) -> dict[str, Any]:
    """Right-padded input_ids and attention_mask tensors. A row may be an encoded media item ({"input_ids": [...],
    "pixel_values": ..., ...}): its media tensors are joined with the other media rows' along the first dimension
    (in row order, as the models take them), per-token inputs (`*type_ids`) padded like the ids."""
    import torch

    ids_of = [r["input_ids"] if isinstance(r, dict) else r for r in rows]
    width = max(len(r) for r in ids_of)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(ids_of):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    media = [(i, r) for i, r in enumerate(rows) if isinstance(r, dict)]
    for key in sorted({k for _, r in media for k in r} - {"input_ids", "source"}):
        values = [(i, r[key]) for i, r in media if key in r]
        if "type_ids" in key:
            padded = torch.zeros((len(rows), width), dtype=values[0][1].dtype)
            for i, value in values:
                padded[i, : value.shape[-1]] = value.reshape(-1)
            batch[key] = padded
        else:
            batch[key] = cat_padded([v for _, v in values])
    return batch


def cat_padded(values: list) -> Any:
    """Tensors joined along dim 0; trailing sizes that differ are zero-padded to the largest (media tensors of
    several rows: pixel values, audio features)."""
    import torch

    if len({tuple(v.shape[1:]) for v in values}) == 1:
        return torch.cat(values)
    shape = [max(v.shape[d] for v in values) for d in range(1, values[0].ndim)]
    out = []
    for v in values:
        padded = torch.zeros((v.shape[0], *shape), dtype=v.dtype)
        padded[(slice(None), *[slice(0, n) for n in v.shape[1:]])] = v
        out.append(padded)
    return torch.cat(out)


# ---- forward passes --------------------------------------------------------------------------------
def pool(hidden: Any, mask: Any, how: str) -> Any:
    """[batch, seq, dim] states -> [batch, dim] (right padding), L2-normalised."""
    import torch
    import torch.nn.functional as F

    if how == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        vec = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
    elif how == "cls":
        vec = hidden[:, 0]
    else:
        last = mask.sum(1) - 1
        vec = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    return F.normalize(vec.float(), dim=-1)


def embed_batch(model: Any, batch: dict[str, Any], pooling: str) -> Any:
    """Pooled vectors of a padded batch; media inputs (pixel_values, image_grid_thw, ...) go to the backbone too."""
    media = {k: v for k, v in batch.items() if k not in ("input_ids", "attention_mask")}
    if media:
        media["use_cache"] = False
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **media)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    return pool(hidden, batch["attention_mask"], pooling)


def scores_batch(model: Any, batch: dict[str, Any]) -> Any:
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()


def judge_scores(model: Any, batch: dict[str, Any], token_ids: Sequence[int]) -> Any:
    """[batch, 1]: the "yes" logit minus the "no" logit after each row's last token. The right-padded rows are
    turned left-padded (positions counted from each row's first token) so that the last position is every row's
    answer position and the language-model head runs on it alone."""
    import torch

    ids, mask = batch["input_ids"], batch["attention_mask"]
    width = ids.shape[1]
    shift = width - mask.sum(1, keepdim=True)
    index = (torch.arange(width, device=ids.device).unsqueeze(0) - shift) % width
    ids, mask = ids.gather(1, index), mask.gather(1, index)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1).logits[:, -1]
    picked = logits[:, list(token_ids)].float()
    return (picked[:, 0] - picked[:, 1]).unsqueeze(-1)


def pair_scorer(spec: "TaskSpec", tokenizer: Any) -> Any:
    """fn(model, batch) -> [batch, 1] relevance logits of a reranker's pairs."""
    if not spec.generative:
        return scores_batch
    token_ids = yes_no_ids(tokenizer)
    return lambda model, batch: judge_scores(model, batch, token_ids)


def truncate_dims(vectors: Any, dims: Optional[int]) -> Any:
    """Matryoshka: the first `dims` dimensions, normalised again."""
    import torch.nn.functional as F

    return vectors if not dims or dims >= vectors.shape[-1] else F.normalize(vectors[..., :dims], dim=-1)


# ---- loading ---------------------------------------------------------------------------------------
def load_task_model(path: Union[str, Path], spec: TaskSpec, dtype: Any = None, attn_impl: Optional[str] = None,
                    trust_remote_code: bool = False, pad_token_id: Optional[int] = None) -> Any:
    """The base model of a task: a classifier (seq_cls, reranker; a fresh head when the folder is a causal LM)
    or the backbone (embedding)."""
    import transformers

    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": trust_remote_code}
    if attn_impl:
        kwargs["attn_implementation"] = attn_impl
    if spec.task_type == "embedding":
        return transformers.AutoModel.from_pretrained(str(path), **kwargs)
    if spec.generative:
        return transformers.AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
    if spec.task_type == "seq_cls":
        names = spec.label_names or [str(i) for i in range(spec.num_labels)]
        kwargs.update(num_labels=spec.num_labels, problem_type=spec.problem_type,
                      id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    else:
        kwargs.update(num_labels=1)
    try:
        model = transformers.AutoModelForSequenceClassification.from_pretrained(str(path), **kwargs)
    except ValueError as exc:
        raise ConfigError(f"--task_type {spec.task_type}: transformers has no sequence-classification class for "
                          f"the model in {path} ({str(exc).splitlines()[0]})") from None
    if pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
    return model


def peft_task_type(spec: TaskSpec) -> str:
    if spec.generative:
        return "CAUSAL_LM"
    return "FEATURE_EXTRACTION" if spec.task_type == "embedding" else "SEQ_CLS"

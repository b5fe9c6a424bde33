"""Models that are not chat models: sequence classification, embedding and reranker (`swiftall sft --task_type`).

Every hyperparameter is a flag here (none hides in an environment variable). Checks that need only these fields
run in `check`; those that need the model (--mrl_dims against its hidden size) or the data (labels against
--num_labels) run in the task pipeline, still before the model's weights load."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..utils.errors import ConfigError
from .base import Section, arg

TASK_TYPES = ("causal_lm", "seq_cls", "embedding", "reranker", "generative_reranker")
PROBLEM_TYPES = {"single_label": "single_label_classification", "multi_label": "multi_label_classification",
                 "regression": "regression"}
EMBEDDING_LOSSES = ("infonce", "cosine", "contrastive", "online_contrastive")
RERANKER_LOSSES = ("pointwise", "listwise")
LOSS_ALIASES = {"pointwise_reranker": "pointwise", "listwise_reranker": "listwise",
                "cosine_similarity": "cosine"}  # ms-swift's spellings
TASK_LOSSES = {"embedding": EMBEDDING_LOSSES, "reranker": RERANKER_LOSSES}
DEFAULT_LOSS = {"embedding": "infonce", "reranker": "pointwise"}
POOLING = ("last", "mean", "cls")


@dataclass
class TaskTypeSection(Section):
    name = "task_type"
    title = "model task (seq_cls, embedding, reranker)"
    task_type: str = arg("causal_lm", "What the model is trained for: causal_lm (chat/text generation), seq_cls "
                         "(a label per text), embedding (a vector per text), reranker (a relevance score per "
                         "query-document pair), generative_reranker (a reranker with --reranker_head yes_no)",
                         choices=TASK_TYPES)
    num_labels: Optional[int] = arg(None, "seq_cls: number of classes (or outputs, for regression; default: from "
                                    "--label_names, else 1 for regression)")
    problem_type: Optional[str] = arg(None, "seq_cls: single_label (one class per row, default), multi_label "
                                      "(a list of classes per row) or regression (a number per row); the long "
                                      "transformers names also work",
                                      choices=(*PROBLEM_TYPES, *PROBLEM_TYPES.values()))
    label_names: list[str] = arg([], "seq_cls: class names in label order; rows may then give a name as label")
    task_loss_type: Optional[str] = arg(None, "embedding: infonce (default), cosine, contrastive, "
                                        "online_contrastive; reranker: pointwise (binary cross-entropy, default) "
                                        "or listwise (softmax over 1 positive and its negatives)",
                                        choices=(*EMBEDDING_LOSSES, *RERANKER_LOSSES, *LOSS_ALIASES))
    infonce_temperature: float = arg(0.1, "embedding, infonce: temperature dividing the cosine similarities")
    in_batch_negatives: bool = arg(True, "embedding, infonce: the other rows' positives and negatives in a batch "
                                   "are negatives too")
    contrastive_margin: float = arg(0.5, "embedding, contrastive/online_contrastive: distance margin for "
                                    "negatives")
    mrl_dims: list[str] = arg([], "embedding: Matryoshka dimensions, e.g. 64,128,256 or 64 128 256 (the loss is "
                              "averaged over the full vector and its first N dimensions; at most the hidden size)")
    pooling: str = arg("last", "embedding: how a text's token states become one vector: last (final token), "
                       "mean, cls (first token); always L2-normalised", choices=POOLING)
    max_negative_samples: int = arg(7, "embedding/reranker: at most this many negatives of a row are used")
    reranker_head: str = arg("score", "reranker: score (a fresh 1-output head on the last token) or yes_no (the "
                             "chat model's own 'yes' minus 'no' logit after a judging prompt; what --task_type "
                             "generative_reranker sets)", choices=("score", "yes_no"))

    def check(self) -> None:
        if self.task_type == "generative_reranker":  # ms-swift's name: a reranker that answers yes or no
            self.task_type, self.reranker_head = "reranker", "yes_no"
        if self.reranker_head != "score" and self.task_type != "reranker":
            raise ConfigError(f"--reranker_head is for --task_type reranker, not {self.task_type}")
        if self.problem_type in PROBLEM_TYPES:
            self.problem_type = PROBLEM_TYPES[self.problem_type]
        if self.task_loss_type in LOSS_ALIASES:
            self.task_loss_type = LOSS_ALIASES[self.task_loss_type]
        self._check_task_flags()
        if self.task_type in TASK_LOSSES and self.task_loss_type is None:
            self.task_loss_type = DEFAULT_LOSS[self.task_type]
        if self.task_type == "seq_cls":
            self._check_labels()
        if self.infonce_temperature <= 0:
            raise ConfigError(f"--infonce_temperature must be > 0, got {self.infonce_temperature}")
        if self.max_negative_samples < 1:
            raise ConfigError(f"--max_negative_samples must be at least 1, got {self.max_negative_samples}")
        self.mrl_dims = _dims(self.mrl_dims)

    def _check_task_flags(self) -> None:
        task = self.task_type
        if self.task_loss_type is not None:
            allowed = TASK_LOSSES.get(task, ())
            if self.task_loss_type not in allowed:
                owner = next((t for t, losses in TASK_LOSSES.items() if self.task_loss_type in losses), None)
                hint = f"use one of {', '.join(allowed)}" if allowed else "leave --task_loss_type out"
                raise ConfigError(f"--task_loss_type {self.task_loss_type} is a loss of --task_type {owner}, not of "
                                  f"--task_type {task}; {hint}")
        if task != "seq_cls" and (self.num_labels is not None or self.problem_type or self.label_names):
            raise ConfigError(f"--num_labels/--problem_type/--label_names are for --task_type seq_cls, not {task}")
        if task != "embedding" and self.mrl_dims:
            raise ConfigError(f"--mrl_dims is for --task_type embedding, not {task}")

    def _check_labels(self) -> None:
        self.problem_type = self.problem_type or "single_label_classification"
        if self.label_names and self.num_labels is not None and self.num_labels != len(self.label_names):
            raise ConfigError(f"--num_labels {self.num_labels} but --label_names names {len(self.label_names)} "
                              "classes; give one name per class")
        if self.num_labels is None:
            if self.label_names:
                self.num_labels = len(self.label_names)
            elif self.problem_type == "regression":
                self.num_labels = 1
            else:
                raise ConfigError("--task_type seq_cls: give --num_labels N (or --label_names a b c)")
        if self.num_labels < 1 or (self.num_labels < 2 and self.problem_type == "single_label_classification"):
            raise ConfigError(f"--num_labels must be at least 2 for classification (1 for regression), got "
                              f"{self.num_labels}")


def _dims(values: list) -> list[int]:
    """'64,128' or [64, 128] -> sorted distinct positive ints."""
    parts = [p for v in values for p in str(v).replace(",", " ").split()]
    try:
        dims = sorted({int(p) for p in parts})
    except ValueError:
        raise ConfigError(f"--mrl_dims: expected whole numbers such as 64,128,256, got {' '.join(parts)!r}") from None
    if any(d < 1 for d in dims):
        raise ConfigError(f"--mrl_dims must be positive numbers, got {dims}")
    return dims

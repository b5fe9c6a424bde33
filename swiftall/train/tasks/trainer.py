"""The trainer of the tasks: transformers' Trainer with the task's loss, and evaluation that reports the task's
metrics (accuracy/F1, MSE/Pearson, recall@k/MRR/nDCG@10) computed on the whole validation set."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
from transformers import Trainer

from ...models.tasks import embed_batch, pad, pair_scorer, scores_batch
from ..callbacks import JsonlLogger, TimeToFirstStep
from ..trainer import training_arguments
from .collate import task_collator
from .losses import embedding_loss, reranker_loss
from .metrics import classification_metrics, embedding_rankings, ranking_metrics, retrieval_pool


class TaskTrainer(Trainer):
    def __init__(self, *args: Any, task_args: Any, spec: Any, pad_id: int, media: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.task_args, self.spec, self.pad_id, self.media = task_args, spec, pad_id, media
        self.scorer = pair_scorer(spec, self.processing_class) if spec.task_type == "reranker" else None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        task = self.spec.task_type
        if task == "seq_cls":
            outputs = model(**inputs)
            return (outputs.loss, outputs) if return_outputs else outputs.loss
        if task == "embedding":
            anchors = embed_batch(model, inputs["anchor"], self.spec.pooling)
            docs = embed_batch(model, inputs["docs"], self.spec.pooling)
            loss = embedding_loss(self.task_args, anchors, docs, inputs)
        else:
            scores = self.scorer(model, inputs)[:, 0]
            loss = reranker_loss(self.task_args.task_loss_type, scores, inputs["pair_labels"], inputs["group"])
        return (loss, {"loss": loss}) if return_outputs else loss

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        rows = eval_dataset if eval_dataset is not None else self.eval_dataset
        found = task_metrics(self.model, self.spec, rows, self.pad_id, self.args.per_device_eval_batch_size,
                             self.scorer, self.media)
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in found.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def batched(fn: Callable, model: Any, items: list, pad_id: int, batch_size: int, media: Any = None) -> np.ndarray:
    """fn(model, padded batch) over items, in batches, without gradients, stacked (media items encoded by
    `media`, a MediaEncoder)."""
    import torch

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(items), batch_size):
            chunk = items[i: i + batch_size]
            batch = {k: v.to(device) for k, v in pad(media.rows(chunk) if media else chunk, pad_id).items()}
            out.append(fn(model, batch).float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0,))


def task_metrics(model: Any, spec: Any, rows: list, pad_id: int, batch_size: int = 8,
                 scorer: Callable = scores_batch, media: Any = None) -> dict[str, float]:
    """The task's metrics on encoded validation samples (see data.py for their shapes); a reranker's pairs are
    scored by `scorer`."""
    batch_size = max(batch_size, 8)
    if spec.task_type == "seq_cls":
        logits = batched(scores_batch, model, [r["ids"] for r in rows], pad_id, batch_size)
        return classification_metrics(logits, np.asarray([r["label"] for r in rows]), spec.problem_type)
    if spec.task_type == "embedding":
        docs, relevant = retrieval_pool(rows)
        embed = lambda m, b: embed_batch(m, b, spec.pooling)  # noqa: E731
        queries = batched(embed, model, [r["anchor"] for r in rows], pad_id, batch_size, media)
        pool = batched(embed, model, docs, pad_id, batch_size, media)
        return ranking_metrics(embedding_rankings(queries, pool, relevant))
    rankings = []
    for r in rows:
        pairs = [*r["positives"], *r["negatives"]]
        scores = batched(scorer, model, pairs, pad_id, batch_size)[:, 0]
        rankings.append((scores, [True] * len(r["positives"]) + [False] * len(r["negatives"])))
    return ranking_metrics(rankings)


def build_task_trainer(model: Any, tokenizer: Any, cfg: Any, spec: Any, data: Any, output_dir: Path,
                       started: float, media: Any = None) -> TaskTrainer:
    """`media`: the MediaEncoder of embedding rows with images/audio/video (encoded per batch)."""
    cfg.group_by_length = False  # samples are not token rows; batches are drawn at random
    args = training_arguments(cfg, output_dir, has_eval=bool(data.val))
    first = TimeToFirstStep(started)
    trainer = TaskTrainer(model=model, args=args, train_dataset=data.train, eval_dataset=data.val or None,
                          data_collator=task_collator(spec, tokenizer.pad_token_id, cfg.seed, media),
                          processing_class=tokenizer, callbacks=[JsonlLogger(output_dir), first],
                          task_args=cfg, spec=spec, pad_id=tokenizer.pad_token_id, media=media)
    trainer.first_step_callback = first
    return trainer

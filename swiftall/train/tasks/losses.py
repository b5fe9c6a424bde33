"""Losses of the embedding and reranker tasks, on L2-normalised vectors (embedding) or pair scores (reranker)."""
from __future__ import annotations

from typing import Any

from ...models.tasks import truncate_dims


def infonce(anchors: Any, docs: Any, doc_row: Any, is_pos: Any, temperature: float, in_batch: bool) -> Any:
    """Cross-entropy of each anchor against every doc (its own negatives, and with in_batch the other rows' docs
    too); the target is the row's positive."""
    import torch
    import torch.nn.functional as F

    sim = anchors @ docs.T / temperature                       # [rows, docs]
    rows = torch.arange(anchors.shape[0], device=anchors.device)
    if not in_batch:
        sim = sim.masked_fill(doc_row.unsqueeze(0) != rows.unsqueeze(1), float("-inf"))
    target = torch.stack([((doc_row == i) & is_pos).nonzero()[0, 0] for i in rows.tolist()])
    return F.cross_entropy(sim, target)


def pair_loss(kind: str, anchors: Any, docs: Any, doc_row: Any, target: Any, margin: float) -> Any:
    """cosine: MSE between cos(anchor, doc) and the target similarity; contrastive: positives pulled together,
    negatives pushed past the margin (cosine distance); online_contrastive: the same on the hard pairs only."""
    import torch.nn.functional as F

    cos = (anchors[doc_row] * docs).sum(-1)
    if kind == "cosine":
        return F.mse_loss(cos, target)
    dist = 1 - cos
    if kind == "contrastive":
        return 0.5 * (target * dist.pow(2) + (1 - target) * F.relu(margin - dist).pow(2)).mean()
    pos, neg = dist[target > 0.5], dist[target <= 0.5]
    hard_pos = pos[pos > neg.min()] if len(neg) else pos
    hard_neg = neg[neg < pos.max()] if len(pos) else neg
    total = hard_pos.pow(2).sum() + F.relu(margin - hard_neg).pow(2).sum()
    return total / max(1, len(dist)) + 0 * cos.sum()  # 0 * cos keeps the graph when no pair is hard


def embedding_loss(args: Any, anchors: Any, docs: Any, batch: dict[str, Any]) -> Any:
    """The loss at full size, plus (Matryoshka) at each of --mrl_dims, averaged."""
    dims = [None, *[d for d in args.mrl_dims if d < anchors.shape[-1]]]
    total = 0
    for d in dims:
        a, x = truncate_dims(anchors, d), truncate_dims(docs, d)
        if args.task_loss_type == "infonce":
            total = total + infonce(a, x, batch["doc_row"], batch["is_pos"], args.infonce_temperature,
                                    args.in_batch_negatives)
        else:
            total = total + pair_loss(args.task_loss_type, a, x, batch["doc_row"], batch["target"],
                                      args.contrastive_margin)
    return total / len(dims)


def reranker_loss(kind: str, scores: Any, labels: Any, group: Any) -> Any:
    """pointwise: binary cross-entropy of each pair's score; listwise: softmax over each group's scores (its
    positive first) with the positive as target."""
    import torch
    import torch.nn.functional as F

    if kind == "pointwise":
        return F.binary_cross_entropy_with_logits(scores, labels)
    losses = [F.cross_entropy(scores[group == g].unsqueeze(0), torch.zeros(1, dtype=torch.long, device=scores.device))
              for g in group.unique().tolist() if (group == g).sum() > 1]
    return torch.stack(losses).mean() if losses else scores.sum() * 0

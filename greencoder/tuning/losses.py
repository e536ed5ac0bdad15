"""Contrastive losses over one batch: each anchor against its efficient program (positive) and
its inefficient programs (negatives), always of the same problem.

Embeddings arrive as three blocks: `anchors` (B x d), `positives` (B x d, row i belongs to anchor
i) and `negatives` (M x d) with `negative_owner` (M,) giving each negative's anchor row. Nothing
is ever contrasted across problems: another problem's program differs in *what* it computes, and
the soft prompt should learn *how efficiently*.

- Triplet: pytorch-metric-learning's TripletMarginLoss on the triplets (anchor i, positive i,
  negative j) for every j owned by i, passed as an explicit `indices_tuple` so the library forms no
  other triplets. Its defaults otherwise: L2 distance on normalised embeddings, the mean over the
  triplets that still violate the margin.
- InfoNCE: -log softmax of cos(a, p)/tau against cos(a, n_j)/tau over the anchor's own negatives,
  averaged over anchors. Written here because the number of negatives varies per anchor; equal to
  the library's NTXentLoss on the same pairs (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOSSES = ("triplet", "infonce")
DEFAULT_MARGIN = 0.05
DEFAULT_TEMPERATURE = 0.07


def stack_for_triplets(anchors, positives, negatives, negative_owner):
    """One embedding matrix and the (anchor, positive, negative) row indices of every triplet."""
    batch = anchors.shape[0]
    embeddings = torch.cat([anchors, positives, negatives], dim=0)
    anchor_idx = negative_owner
    positive_idx = negative_owner + batch
    negative_idx = torch.arange(negatives.shape[0], device=negatives.device) + 2 * batch
    return embeddings, (anchor_idx, positive_idx, negative_idx)


class TripletLoss:
    def __init__(self, margin: float = DEFAULT_MARGIN):
        from pytorch_metric_learning.losses import TripletMarginLoss

        self.margin = margin
        self._loss = TripletMarginLoss(margin=margin)

    def __call__(self, anchors, positives, negatives, negative_owner):
        embeddings, indices = stack_for_triplets(anchors, positives, negatives, negative_owner)
        return self._loss(embeddings, indices_tuple=indices)


@dataclass(frozen=True)
class InfoNCELoss:
    temperature: float = DEFAULT_TEMPERATURE

    def __call__(self, anchors, positives, negatives, negative_owner):
        return info_nce(anchors, positives, negatives, negative_owner, self.temperature)


def info_nce(anchors, positives, negatives, negative_owner, temperature: float):
    """Mean over anchors of -log(e^{s(a,p)/t} / (e^{s(a,p)/t} + sum_j e^{s(a,n_j)/t})), s = cosine."""
    batch = anchors.shape[0]
    positive_logits = F.cosine_similarity(anchors, positives, dim=-1) / temperature
    negative_logits = F.cosine_similarity(anchors[negative_owner], negatives, dim=-1) / temperature
    # One row per anchor: its positive in column 0, its own negatives after it, -inf elsewhere.
    counts = torch.bincount(negative_owner, minlength=batch)
    width = int(counts.max().item()) if negative_owner.numel() else 0
    rank = torch.arange(negative_owner.numel(), device=negative_owner.device)
    starts = torch.cumsum(counts, 0) - counts
    order = torch.argsort(negative_owner, stable=True)
    column = torch.empty_like(rank)
    column[order] = rank - starts[negative_owner[order]]
    logits = torch.full((batch, 1 + width), float("-inf"), device=anchors.device, dtype=positive_logits.dtype)
    logits[:, 0] = positive_logits
    logits[negative_owner, 1 + column] = negative_logits
    targets = torch.zeros(batch, dtype=torch.long, device=anchors.device)
    return F.cross_entropy(logits, targets)


def make_loss(name: str, margin: float = DEFAULT_MARGIN, temperature: float = DEFAULT_TEMPERATURE):
    """The loss called `name` with its one hyperparameter."""
    if name == "triplet":
        return TripletLoss(margin)
    if name == "infonce":
        return InfoNCELoss(temperature)
    raise ValueError(f"unknown loss {name!r}: choose {', '.join(LOSSES)}")


@dataclass(frozen=True)
class Similarities:
    """Cosine similarities of one batch, for the validation metrics."""

    positive: torch.Tensor
    """cos(anchor i, efficient i), one per anchor."""
    negative: torch.Tensor
    """cos(owner anchor, inefficient j), one per negative."""
    negative_owner: torch.Tensor


def similarities(anchors, positives, negatives, negative_owner) -> Similarities:
    return Similarities(
        positive=F.cosine_similarity(anchors, positives, dim=-1),
        negative=F.cosine_similarity(anchors[negative_owner], negatives, dim=-1),
        negative_owner=negative_owner,
    )

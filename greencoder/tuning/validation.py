"""Validation metrics of a soft prompt on held-out entries: loss and cosine separation.

Separation = mean cos(anchor, efficient) - mean cos(anchor, inefficient), the second mean over
every (anchor, inefficient program) pair. It is what contrastive prompt tuning tries to raise, and
it is loss-independent, so triplet and InfoNCE runs can be compared and the best epoch picked by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from greencoder.tuning.batches import Collator, Sample, split_embeddings
from greencoder.tuning.losses import similarities


@dataclass(frozen=True)
class ValidationResult:
    loss: float
    separation: float
    cos_efficient: float
    cos_inefficient: float
    ranking_accuracy: float
    entries: int


def validate(model, embedder, loss_fn, samples: Sequence[Sample], collator: Collator, batch_size: int, device) -> ValidationResult:
    """Evaluate `samples` (all their inefficient programs) with gradients off, in eval mode."""
    was_training = model.training
    model.eval()
    loss_sum, positives, negatives, wins = 0.0, [], [], []
    try:
        with torch.no_grad():
            for start in range(0, len(samples), batch_size):
                chunk = samples[start : start + batch_size]
                batch = collator(chunk)
                embeddings = embedder(model, batch["input_ids"].to(device), batch["attention_mask"].to(device))
                owner = batch["negative_owner"].to(device)
                anchors, efficient, inefficient = split_embeddings(embeddings, len(chunk))
                loss_sum += float(loss_fn(anchors, efficient, inefficient, owner)) * len(chunk)
                sims = similarities(anchors, efficient, inefficient, owner)
                positives.append(sims.positive.cpu())
                negatives.append(sims.negative.cpu())
                wins.append((sims.positive[owner] > sims.negative).cpu())
    finally:
        model.train(was_training)
    positive = torch.cat(positives)
    negative = torch.cat(negatives)
    return ValidationResult(
        loss=loss_sum / len(samples),
        separation=float(positive.mean() - negative.mean()),
        cos_efficient=float(positive.mean()),
        cos_inefficient=float(negative.mean()),
        ranking_accuracy=float(torch.cat(wins).float().mean()),
        entries=len(samples),
    )

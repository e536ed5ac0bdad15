"""The contrastive losses contrast each anchor with its own problem's programs only."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from greencoder.tuning.losses import InfoNCELoss, TripletLoss, info_nce, similarities


def random_batch(seed: int = 0, anchors: int = 4, negatives_per_anchor=(1, 3, 2, 1), dim: int = 16):
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(anchors, dim, generator=generator)
    p = torch.randn(anchors, dim, generator=generator)
    owner = torch.tensor([i for i, count in enumerate(negatives_per_anchor) for _ in range(count)])
    n = torch.randn(len(owner), dim, generator=generator)
    # Interleave owners so the loss cannot rely on negatives being grouped.
    order = torch.randperm(len(owner), generator=generator)
    return a, p, n[order], owner[order]


def test_infonce_equals_pytorch_metric_learning_ntxent():
    from pytorch_metric_learning.losses import NTXentLoss

    a, p, n, owner = random_batch()
    for temperature in (0.07, 0.5):
        ours = info_nce(a, p, n, owner, temperature)
        embeddings = torch.cat([a, p, n])
        batch = a.shape[0]
        positive_pairs = (torch.arange(batch), torch.arange(batch) + batch)
        negative_pairs = (owner, torch.arange(len(owner)) + 2 * batch)
        theirs = NTXentLoss(temperature=temperature)(embeddings, indices_tuple=(*positive_pairs, *negative_pairs))
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)


def test_infonce_by_hand_and_its_gradient_direction():
    a, p, n, owner = random_batch(anchors=2, negatives_per_anchor=(2, 1))
    loss = info_nce(a, p, n, owner, 0.1)
    terms = []
    for i in range(2):
        logits = [F.cosine_similarity(a[i], p[i], dim=0) / 0.1] + [F.cosine_similarity(a[i], n[j], dim=0) / 0.1
                                                                for j in range(len(owner)) if owner[j] == i]
        terms.append(-torch.log_softmax(torch.stack(logits), 0)[0])
    assert loss.item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-6)
    # Moving the anchors towards their positives lowers the loss.
    assert info_nce(a + 0.5 * (p - a), p, n, owner, 0.1) < loss


def test_triplet_uses_exactly_the_same_problem_triplets():
    a, p, n, owner = random_batch(seed=3)
    margin = 0.3
    loss = TripletLoss(margin)(a, p, n, owner)

    def distance(x, y):  # the library's default: L2 between normalised embeddings
        return torch.dist(F.normalize(x, dim=0), F.normalize(y, dim=0))

    violations = torch.stack([F.relu(distance(a[i], p[i]) - distance(a[i], n[j]) + margin) for j, i in enumerate(owner.tolist())])
    expected = violations[violations > 0].mean()  # the library's default: mean over violating triplets
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)

    # Cross-problem triplets would change the value: label-mined triplets over the same embeddings differ.
    from pytorch_metric_learning.losses import TripletMarginLoss

    labels = torch.cat([torch.arange(4), torch.arange(4), 100 + torch.arange(len(owner))])
    mined = TripletMarginLoss(margin=margin)(torch.cat([a, p, n]), labels)
    assert mined.item() != pytest.approx(loss.item(), rel=1e-3)


def test_triplet_is_zero_once_every_efficient_program_is_closer_by_the_margin():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = a.clone()
    n = -a
    loss = TripletLoss(0.5)(a, p, n, torch.tensor([0, 1]))
    assert loss.item() == 0.0


def test_losses_have_gradients_for_all_blocks():
    a, p, n, owner = random_batch()
    for loss_fn in (TripletLoss(1.0), InfoNCELoss(0.1)):
        tensors = [t.clone().requires_grad_(True) for t in (a, p, n)]
        loss_fn(*tensors, owner).backward()
        assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in tensors)


def test_similarities_pair_each_negative_with_its_owner():
    a, p, n, owner = random_batch()
    sims = similarities(a, p, n, owner)
    for j, i in enumerate(owner.tolist()):
        assert sims.negative[j].item() == pytest.approx(F.cosine_similarity(a[i], n[j], dim=0).item(), abs=1e-6)

"""HERO's ranking loss against a plain-loop reference, for 0, 1 or several positives per row/column."""

from __future__ import annotations

import pytest
import torch

from c2f.train.losses import ranking_loss


def _reference(scores, positive, margin, hard_k):
    """Plain loops over (anchor, positive, negative) triples, both directions, float64."""
    s = scores.tolist()
    pos = positive.tolist()
    n_q, n_v = len(s), len(s[0])
    has_video = [any(row) for row in pos]

    def weights(values: list[float]) -> list[float]:
        # HERO hard negatives: the hard_k highest-scoring negatives of an anchor weigh 10, others 0.1
        if hard_k is None:
            return [1.0] * len(values)
        order = sorted(range(len(values)), key=lambda i: -values[i])
        hardest = set(order[:hard_k])
        return [10.0 if i in hardest else 0.1 for i in range(len(values))]

    def direction(anchors):
        total = weight_sum = 0.0
        for positives, negatives in anchors:  # lists of scores of one anchor
            w = weights(negatives)
            for sp in positives:
                for sn, wn in zip(negatives, w, strict=True):
                    total += wn * max(0.0, margin + sn - sp)
                    weight_sum += wn
        return total / max(weight_sum, 1.0)

    per_query = [
        ([s[q][v] for v in range(n_v) if pos[q][v]], [s[q][v] for v in range(n_v) if not pos[q][v]])
        for q in range(n_q)
    ]
    per_video = [
        (
            [s[q][v] for q in range(n_q) if pos[q][v]],
            [s[q][v] for q in range(n_q) if not pos[q][v] and has_video[q]],
        )
        for v in range(n_v)
    ]
    return direction(per_query), direction(per_video)


def _random_case(seed: int, n_q: int, n_v: int):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.rand(n_q, n_v, generator=gen, dtype=torch.float64) * 0.6 - 0.1
    own = torch.randint(0, n_v - 1, (n_q,), generator=gen)  # the last video has no query
    positive = torch.zeros(n_q, n_v, dtype=torch.bool)
    positive[torch.arange(n_q), own] = True
    positive[0] = False  # a query whose video is not in the batch
    positive[1, (own[1] + 1) % (n_v - 1)] = True  # a query with two positive videos
    return scores, positive


@pytest.mark.parametrize("hard_k", [None, 2])
@pytest.mark.parametrize("seed", range(4))
def test_ranking_loss_equals_brute_force(seed, hard_k):
    scores, positive = _random_case(seed, n_q=9, n_v=5)  # 9 queries on 5 videos: shared videos
    got = ranking_loss(scores, positive, margin=0.2, hard_k=hard_k)
    want = _reference(scores, positive, 0.2, hard_k)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == torch.float64
        assert g.item() == pytest.approx(w, rel=1e-12, abs=1e-15)


def test_cases_cover_zero_one_and_several_positives_per_column():
    counts = set()
    for seed in range(4):
        _, positive = _random_case(seed, n_q=9, n_v=5)
        counts |= set(positive.sum(0).tolist())
    assert {0, 1} <= counts and max(counts) >= 2


def test_shared_video_is_not_the_sum_of_its_positives():
    # Two queries of one video (column 0) and one of another (column 1). Before the fix, column 0's
    # positive became s[0, 0] + s[1, 0] = 1.3, which hid query 2's violation of video 0.
    s = torch.tensor([[0.6, 0.1], [0.7, 0.2], [0.65, 0.3]], dtype=torch.float64)
    pos = torch.tensor([[True, False], [True, False], [False, True]])
    l_videos, l_queries = ranking_loss(s, pos, margin=0.1)
    # query 2 against video 0: 0.1 + 0.65 - 0.3 = 0.45; queries 0, 1 are fine -> mean over 3
    assert l_videos.item() == pytest.approx(0.45 / 3, abs=1e-12)
    # video 0 (positives 0.6, 0.7) vs query 2 (0.65): 0.15 and 0.05; video 1 (0.3) vs 0.1, 0.2: 0, 0
    assert l_queries.item() == pytest.approx(0.2 / 4, abs=1e-12)


def test_column_without_positive_contributes_nothing():
    s = torch.tensor([[0.5, 0.9], [0.1, 0.8]], dtype=torch.float64)
    pos = torch.tensor([[True, False], [True, False]])  # video 1 has no query in the batch
    _, l_queries = ranking_loss(s, pos, margin=0.1)
    # video 0 has no negative query (both queries are its own); video 1 has no positive: no triple.
    # Before the fix video 1 got 0 as its positive and counted 0.1 + 0.9 and 0.1 + 0.8.
    assert l_queries.item() == 0.0


@pytest.mark.parametrize("hard_k", [None, 3])
def test_one_positive_per_row_and_column_keeps_the_previous_formula(hard_k):
    # The previous implementation, which was right for an identity matrix of positives.
    def previous(scores, positive, margin, hard_k):
        neg = ~positive

        def hinge(s_pos, s, neg_mask):
            h = (margin + s - s_pos).clamp(min=0) * neg_mask
            if hard_k is None:
                return h.sum() / neg_mask.sum().clamp(min=1)
            k = min(hard_k, s.shape[1])
            rank = (s.masked_fill(~neg_mask, -1e4)).argsort(dim=1, descending=True).argsort(dim=1)
            ten, tenth = torch.tensor(10.0, dtype=s.dtype), torch.tensor(0.1, dtype=s.dtype)
            w = torch.where(rank < k, ten, tenth) * neg_mask  # (it had float32 weights; float64 here)
            return (h * w).sum() / w.sum().clamp(min=1)

        pos_q = (scores * positive).sum(1, keepdim=True)
        pos_v = (scores * positive).sum(0, keepdim=True)
        return hinge(pos_q, scores, neg), hinge(pos_v.t(), scores.t(), neg.t())

    gen = torch.Generator().manual_seed(7)
    scores = torch.rand(6, 6, generator=gen, dtype=torch.float64)
    positive = torch.eye(6, dtype=torch.bool)
    got, want = ranking_loss(scores, positive, 0.1, hard_k), previous(scores, positive, 0.1, hard_k)
    for g, w in zip(got, want, strict=True):
        assert g.item() == pytest.approx(w.item(), rel=1e-12)


def test_gradient_flows_to_positive_and_negative_scores():
    s = torch.tensor([[0.5, 0.45, 0.0], [0.2, 0.9, 0.3]], dtype=torch.float64, requires_grad=True)
    pos = torch.tensor([[True, False, False], [False, True, False]])
    l_videos, _ = ranking_loss(s, pos, margin=0.1)
    l_videos.backward()
    # only (query 0, video 1) violates: 0.1 + 0.45 - 0.5 > 0, mean over 4 triples
    assert s.grad.tolist() == [[-0.25, 0.25, 0.0], [0.0, 0.0, 0.0]]

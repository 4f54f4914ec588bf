"""Span decoding (HERO moment scores, temporal NMS, corpus ranking, VSLNet argmax) vs brute force."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from c2f.model.decode import (
    corpus_moments,
    moment_scores,
    temporal_iou_spans,
    temporal_nms,
    top_moments,
    vslnet_argmax,
)


def brute_force_moments(st, ed, vs, alpha, lo, hi):
    """Every allowed (score, i, j), best first; length = j - i (inclusive spans)."""
    out = []
    for i in range(len(st)):
        for j in range(len(ed)):
            if lo <= j - i <= hi:
                out.append((float(np.exp(alpha * vs) * st[i] * ed[j]), i, j))
    return sorted(out, key=lambda t: -t[0])


def brute_force_nms(spans, scores, thd):
    """TVR's greedy loop: take the best, drop every later span overlapping it by IoU > thd."""
    order = sorted(range(len(scores)), key=lambda k: -scores[k])
    kept = []
    while order:
        best = order.pop(0)
        kept.append(best)
        a = spans[best]
        rest = []
        for k in order:
            b = spans[k]
            inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
            union = max(a[1], b[1]) - min(a[0], b[0])
            if (inter / union if union else 0.0) <= thd:
                rest.append(k)
        order = rest
    return kept


@pytest.mark.parametrize("n, lo, hi", [(20, 2, 15), (7, 0, 3), (30, 1, 29)])
def test_moment_scores_and_top_moments_vs_brute_force(n, lo, hi):
    rng = np.random.default_rng(n)
    for _ in range(4):
        st, ed = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n))
        vs = float(rng.uniform(-1, 1))
        scores = moment_scores(st, ed, vs, alpha=20, min_len=lo, max_len=hi)
        assert scores.to_dense().shape == (n, n)
        i, j, s = top_moments(scores, 30)
        ref = brute_force_moments(st, ed, vs, 20, lo, hi)[:30]
        np.testing.assert_allclose(s, [r[0] for r in ref], rtol=1e-12)
        assert list(zip(i.tolist(), j.tolist(), strict=True)) == [(r[1], r[2]) for r in ref]


def test_length_limits_are_inclusive_clip_counts():
    st = ed = np.full(6, 1 / 6)
    scores = moment_scores(st, ed, 0.0, alpha=20, min_len=2, max_len=3)
    allowed = {(int(a), int(b)) for a, b in zip(*np.nonzero(scores.to_dense()), strict=True)}
    # (0, 2) covers clips 0, 1, 2: length j - i = 2 is the shortest allowed; (0, 3) the longest
    assert (0, 2) in allowed and (0, 3) in allowed
    assert (0, 1) not in allowed and (0, 4) not in allowed and (3, 2) not in allowed


def test_video_shorter_than_min_len_allows_every_ordered_span():
    st, ed = np.array([0.6, 0.4]), np.array([0.3, 0.7])
    i, j, s = top_moments(moment_scores(st, ed, 0.0, min_len=2, max_len=15), 10)
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 0), (0, 1), (1, 1)]
    assert s[0] == pytest.approx(0.6 * 0.7)


def test_video_score_scales_by_exp_alpha():
    st, ed = np.array([0.5, 0.2, 0.2, 0.1]), np.array([0.1, 0.2, 0.3, 0.4])
    a = moment_scores(st, ed, 0.1, alpha=20, min_len=0, max_len=3)
    b = moment_scores(st, ed, 0.3, alpha=20, min_len=0, max_len=3)
    np.testing.assert_allclose(b.to_dense(), a.to_dense() * np.exp(20 * 0.2))


def dense_moment_scores(st, ed, video_score, alpha, min_len, max_len):
    """The former dense computation, kept as the reference: three (N, N) arrays."""
    n = len(st)
    outer = np.outer(st, ed) * np.exp(alpha * video_score)
    length = np.arange(n)[None, :] - np.arange(n)[:, None]
    allowed = (length >= min_len) & (length <= max_len)
    if not allowed.any():
        allowed = length >= 0
    return np.where(allowed, outer, 0.0)


def dense_top_moments(scores, top_n):
    flat = scores.ravel()
    valid = np.flatnonzero(flat > 0)
    take = valid[np.argsort(-flat[valid], kind="stable")[:top_n]]
    i, j = np.unravel_index(take, scores.shape)
    return i, j, flat[take]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "n, lo, hi",
    [(1, 2, 15), (2, 2, 15), (3, 2, 15), (16, 2, 15), (40, 2, 15), (9, 0, 0), (12, -2, 3), (8, 5, 1)],
)
def test_banded_scores_equal_the_dense_computation(n, lo, hi, dtype):
    rng = np.random.default_rng(n + 100 * hi)
    st, ed = rng.dirichlet(np.ones(n)).astype(dtype), rng.dirichlet(np.ones(n)).astype(dtype)
    st[rng.random(n) < 0.2] = 0  # zero probabilities are not moments
    ed[n // 2] = ed[0]  # exactly equal scores: ties broken by (i, j) as a stable dense sort does
    vs = float(rng.uniform(-0.3, 0.3))
    ours = moment_scores(st, ed, vs, alpha=20, min_len=lo, max_len=hi)
    dense = dense_moment_scores(st, ed, vs, 20, lo, hi)
    np.testing.assert_array_equal(ours.to_dense(), dense)
    for top_n in (1, 7, 500):
        i, j, s = top_moments(ours, top_n)
        ri, rj, rs = dense_top_moments(dense, top_n)
        assert i.tolist() == ri.tolist() and j.tolist() == rj.tolist()
        np.testing.assert_allclose(s, rs, rtol=1e-12, atol=0)


def test_three_hour_video_decodes_without_the_dense_matrix():
    n = 7200  # 3 h of 1.5 s clips: one dense (N, N) float64 array is 415 MB
    rng = np.random.default_rng(5)
    st, ed = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n))
    tracemalloc.start()
    try:
        scores = moment_scores(st, ed, 0.2)
        i, j, s = top_moments(scores, 200)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20e6, f"peak {peak / 1e6:.1f} MB"  # 14 diagonals x 7200 x 8 B = 0.8 MB of scores
    assert len(s) == 200 and np.all((j - i >= 2) & (j - i <= 15)) and np.all(np.diff(s) <= 0)
    best = max((st[a] * ed[b], a, b) for a in range(n) for b in range(a + 2, min(n, a + 16)))
    assert (i[0], j[0]) == (best[1], best[2])


def test_vslnet_argmax_vs_brute_force():
    rng = np.random.default_rng(1)
    for n in (1, 2, 9, 40):
        for _ in range(5):
            st, ed = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n))
            best = max((st[a] * ed[b], a, b) for a in range(n) for b in range(a, n))
            assert vslnet_argmax(st, ed) == (best[1], best[2])
            capped = max((st[a] * ed[b], a, b) for a in range(n) for b in range(a, min(n, a + 4)))
            assert vslnet_argmax(st, ed, max_len=3) == (capped[1], capped[2])


def test_temporal_nms_hand_worked():
    spans = np.array([[0, 10], [1, 10], [20, 30], [0, 4], [5, 10]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.95])
    # best is [5,10]; [0,10] overlaps it by 5/10 = 0.5 (not > 0.5: kept); [1,10] then overlaps
    # [0,10] by 0.9 (dropped); [20,30] is disjoint; [0,4] overlaps [0,10] by 0.4 (kept)
    assert temporal_nms(spans, scores, 0.5).tolist() == [4, 0, 2, 3]
    assert temporal_nms(spans, scores, 0.49).tolist() == [4, 2, 3]


def test_temporal_nms_vs_brute_force():
    rng = np.random.default_rng(2)
    for thd in (0.3, 0.5, 0.7):
        for _ in range(10):
            st = rng.integers(0, 30, 40) * 1.5
            spans = np.stack([st, st + rng.integers(1, 10, 40) * 1.5], 1)
            scores = rng.random(40)
            assert temporal_nms(spans, scores, thd).tolist() == brute_force_nms(spans.tolist(), scores, thd)


def test_temporal_iou_spans_matches_official_formula():
    rng = np.random.default_rng(3)
    a = np.sort(rng.uniform(0, 20, (15, 2)), 1)
    b = np.sort(rng.uniform(0, 20, (9, 2)), 1)
    iou = temporal_iou_spans(a, b)
    for x in range(15):
        for y in range(9):
            inter = max(0, min(a[x, 1], b[y, 1]) - max(a[x, 0], b[y, 0]))
            union = max(a[x, 1], b[y, 1]) - min(a[x, 0], b[y, 0])
            assert iou[x, y] == pytest.approx(inter / union)


def brute_force_corpus(per_video, alpha, lo, hi, max_before_nms, nms_iou, top_n):
    cands = []
    for vidx, st, ed, vs, times in per_video:
        for score, i, j in brute_force_moments(st, ed, vs, alpha, lo, hi):
            if score > 0:
                cands.append((score, vidx, float(times[i, 0]), float(times[j, 1])))
    cands = sorted(cands, key=lambda c: -c[0])[:max_before_nms]
    out = []
    for vidx in {c[1] for c in cands}:
        mine = [c for c in cands if c[1] == vidx]
        keep = brute_force_nms([c[2:] for c in mine], [c[0] for c in mine], nms_iou)
        out += [mine[k] for k in keep]
    out.sort(key=lambda c: -c[0])
    return [(v, st, ed, sc) for sc, v, st, ed in out[:top_n]]


def test_corpus_moments_vs_brute_force():
    rng = np.random.default_rng(4)
    for _ in range(4):
        per_video = []
        for vidx in rng.choice(50, 6, replace=False):
            n = int(rng.integers(1, 25))
            times = np.stack([np.arange(n) * 1.5, np.minimum(np.arange(n) * 1.5 + 1.5, n * 1.5 - 0.4)], 1)
            st, ed = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n))
            per_video.append((int(vidx), st, ed, float(rng.uniform(-0.2, 0.4)), times))
        ours = corpus_moments(per_video, alpha=20, max_before_nms=60, nms_iou=0.5, top_n=25)
        ref = brute_force_corpus(per_video, 20, 2, 15, 60, 0.5, 25)
        assert [o[:3] for o in ours] == [r[:3] for r in ref]
        np.testing.assert_allclose([o[3] for o in ours], [r[3] for r in ref], rtol=1e-12)


def test_corpus_moments_ranks_across_videos():
    st = np.array([0.7, 0.1, 0.1, 0.1])
    ed = np.array([0.1, 0.1, 0.7, 0.1])
    times = np.stack([np.arange(4) * 1.5, np.arange(4) * 1.5 + 1.5], 1)
    out = corpus_moments([(0, st, ed, 0.1, times), (1, st, ed, 0.2, times)], top_n=3)
    # video 1's best span wins (higher video score); its overlapping (0, 3) is removed by NMS
    # (IoU 0.75), so video 0's best comes second
    assert out[0][:3] == (1, 0.0, 4.5) and out[1][:3] == (0, 0.0, 4.5) and out[0][3] > out[1][3]
    assert corpus_moments([]) == []

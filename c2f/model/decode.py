"""Span decoding: HERO moment scoring with length limits and temporal NMS, VSLNet argmax.

Clip spans (i, j) are inclusive; "length" is j - i in clips (HERO's min/max lengths 2..15 clips
count j - i, so a span (i, i + 2) covers three 1.5 s clips).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MomentScores:
    """HERO's span scores of one video, stored by diagonal: only the allowed lengths are kept, so
    memory is O(N x allowed lengths) instead of O(N^2) (a 3 h video has N = 7200 clips).

    values[l, i] = score of the span (i, i + lengths[l]); 0 where that span leaves the video."""

    n: int  # clips in the video
    lengths: np.ndarray  # (L,) int64, allowed j - i, ascending
    values: np.ndarray  # (L, N) float64 (or the probabilities' dtype)

    def to_dense(self) -> np.ndarray:
        """(N, N) score(i, j), 0 outside the allowed lengths (for small videos and checks only)."""
        dense = np.zeros((self.n, self.n), dtype=self.values.dtype)
        for length, row in zip(self.lengths.tolist(), self.values, strict=True):
            i = _starts(self.n, length)
            dense[i, i + length] = row[i]
        return dense


def _starts(n: int, length: int) -> np.ndarray:
    """Start clips i of the spans (i, i + length) inside a video of n clips."""
    return np.arange(max(0, -length), min(n, n - length))


def moment_scores(
    st_prob: np.ndarray,
    ed_prob: np.ndarray,
    video_score: float = 0.0,
    alpha: float = 20.0,
    min_len: int = 2,
    max_len: int = 15,
) -> MomentScores:
    """score(i, j) = exp(alpha * video_score) * P_st(i) * P_ed(j) for min_len <= j - i <= max_len.
    A video shorter than min_len + 1 clips allows every ordered span (j - i >= 0) instead."""
    n = len(st_prob)
    st, ed = np.asarray(st_prob), np.asarray(ed_prob)  # float32 stays float32 until scaled, as before
    lengths = np.arange(max(min_len, -(n - 1)), min(max_len, n - 1) + 1, dtype=np.int64)
    if len(lengths) == 0:
        lengths = np.arange(n, dtype=np.int64)
    scale = np.exp(alpha * video_score)
    values = np.zeros((len(lengths), n), dtype=(st[:0] * ed[:0] * scale).dtype)  # (L, N)
    for row, length in zip(values, lengths.tolist(), strict=True):
        i = _starts(n, length)
        row[i] = st[i] * ed[i + length] * scale  # the same float operations as the dense outer product
    return MomentScores(n, lengths, values)


def top_moments(scores: MomentScores, top_n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top_n (i, j, score) with positive score, best first; equal scores by (i, j) ascending
    (the order of a stable sort over the dense row-major matrix)."""
    row, i = np.nonzero(scores.values > 0)  # (M,) each
    j = i + scores.lengths[row]
    s = scores.values[row, i]
    order = np.lexsort((j, i, -s))[:top_n]
    return i[order], j[order], s[order]


def temporal_iou_spans(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(M, 2) x (K, 2) seconds -> (M, K) IoU (true union)."""
    inter = np.clip(
        np.minimum(a[:, None, 1], b[None, :, 1]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None
    )
    union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def temporal_nms(spans: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.5) -> np.ndarray:
    """Greedy NMS: indices kept, best first; a span is dropped when IoU > threshold with a kept one
    (as TVR/HERO's temporal_nms; their max(ed) - min(st) "union" equals the true union whenever
    the spans overlap, so the decisions are the same)."""
    order = np.argsort(-scores, kind="stable")
    iou = temporal_iou_spans(spans, spans)
    keep: list[int] = []
    suppressed = np.zeros(len(spans), bool)
    for idx in order:
        if suppressed[idx]:
            continue
        keep.append(int(idx))
        suppressed |= iou[idx] > iou_threshold
    return np.asarray(keep, dtype=np.int64)


def corpus_moments(
    per_video: list[tuple[int, np.ndarray, np.ndarray, float, np.ndarray]],
    alpha: float = 20.0,
    min_len: int = 2,
    max_len: int = 15,
    max_before_nms: int = 200,
    nms_iou: float = 0.5,
    top_n: int = 100,
) -> list[tuple[int, float, float, float]]:
    """per_video: (video_idx, st_prob (N,), ed_prob (N,), video_score, clip_times (N, 2) seconds).
    Returns [(video_idx, st_sec, ed_sec, score)] best first: the max_before_nms best spans over the
    corpus (HERO's scores), greedy NMS among the spans of each video, then the top_n."""
    vids, starts, ends, scores = [], [], [], []
    for vidx, st, ed, vs, times in per_video:
        i, j, s = top_moments(moment_scores(st, ed, vs, alpha, min_len, max_len), max_before_nms)
        vids.append(np.full(len(s), vidx, dtype=np.int64))
        starts.append(np.asarray(times)[i, 0])
        ends.append(np.asarray(times)[j, 1])
        scores.append(s)
    if not scores or not sum(map(len, scores)):
        return []
    vid, st_sec, ed_sec, score = (np.concatenate(x) for x in (vids, starts, ends, scores))  # (M,) each
    top = np.argsort(-score, kind="stable")[:max_before_nms]
    vid, st_sec, ed_sec, score = vid[top], st_sec[top], ed_sec[top], score[top]
    kept = []
    for v in np.unique(vid):
        mine = np.flatnonzero(vid == v)
        kept.append(mine[temporal_nms(np.stack([st_sec[mine], ed_sec[mine]], 1), score[mine], nms_iou)])
    kept_idx = np.concatenate(kept)
    kept_idx = kept_idx[np.argsort(-score[kept_idx], kind="stable")][:top_n]
    return [(int(vid[k]), float(st_sec[k]), float(ed_sec[k]), float(score[k])) for k in kept_idx.tolist()]


def vslnet_argmax(st_prob: np.ndarray, ed_prob: np.ndarray, max_len: int | None = None) -> tuple[int, int]:
    """argmax over i <= j (and j - i <= max_len) of P_st(i) * P_ed(j)."""
    n = len(st_prob)
    outer = np.outer(st_prob, ed_prob)
    length = np.arange(n)[None, :] - np.arange(n)[:, None]
    ok = length >= 0 if max_len is None else (length >= 0) & (length <= max_len)
    i, j = np.unravel_index(np.argmax(np.where(ok, outer, -np.inf)), outer.shape)
    return int(i), int(j)

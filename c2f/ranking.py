"""Orderings that do not depend on float noise.

Two scores computed on different CPUs (bfloat16 or AVX-512 kernels, another summation order) differ
in their last bits, so a plain sort flips near-ties from one machine to the next. Here scores within
`tol` of the best remaining one count as tied, and the tie is broken by explicit keys (earlier
start, shorter span, smaller id): the same order on every machine unless two scores sit right at the
tolerance edge, which noise of 1e-7 cannot create from a tie.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Scores here are cosines in [-1, 1] computed in float32 (or from bfloat16 embeddings): a dot product
# of 512 terms carries up to ~d * 2^-24 = 3e-5 of rounding in the worst case and ~1e-7 typically.
SCORE_TOLERANCE = 1e-5


def tiebreak_rank(keys: Sequence[Sequence[float]]) -> np.ndarray:
    """(n,) position of each item when sorted by `keys` (first key first, all ascending)."""
    cols = [np.asarray(k) for k in keys]
    order = np.lexsort(cols[::-1])
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return rank


def pick_best(scores: np.ndarray, rank: np.ndarray, alive: np.ndarray, tol: float = SCORE_TOLERANCE) -> int:
    """Index of the alive item with the smallest tiebreak rank among those within `tol` of the best
    alive score (-1 when none is alive)."""
    if not alive.any():
        return -1
    top = scores[alive].max()
    tied = alive & (scores >= top - tol)
    return int(np.flatnonzero(tied)[np.argmin(rank[tied])])


def order_cosines_with_ties(
    scores: Sequence[float], keys: Sequence[Sequence[float]], tol: float = SCORE_TOLERANCE
) -> list[int]:
    """Indices of float32 cosine scores (a video's spans, moments across videos, fused video
    scores) best first; scores within `tol` of the best remaining one are ordered by `keys`
    (ascending, first key first). Greedy, so O(n^2): meant for tens to hundreds of items. The
    index's exact float64 video scores use `c2f.index.ranking.order_videos_with_ties` instead."""
    s = np.asarray(scores, np.float64)
    rank = tiebreak_rank(keys) if len(s) else np.zeros(0, np.int64)
    alive = np.ones(len(s), bool)
    out = []
    for _ in range(len(s)):
        i = pick_best(s, rank, alive, tol)
        alive[i] = False
        out.append(i)
    return out

"""The order of videos (and of a video's clips) when their exact scores tie.

Final scores are computed in float64 from the stored float32/float16 numbers (products exact, d
additions), so any two evaluations of one score, on any CPU path and in any summation order,
differ by at most 2 e64 with e64 = `scan.float64_error(d)` (5.7e-14 for d = 512). Scores within
the tie tolerance 4 e64 of each other are treated as equal and ordered by video key: equal
scores always land in one group whatever the path, and scores further apart than the tolerance
plus 2 e64 are always told apart. (A float32 rescoring would need a tolerance ~5e-6 and flip
near ties of that size between CPUs; float64 leaves only gaps of ~1e-13 to chance.)

Groups are formed from the top: the best remaining score leads, every score within the tolerance
of the leader joins its group, so ties never chain through a run of near-equal scores.
"""

from __future__ import annotations

import numpy as np

from c2f.index.scan import float64_error


def tie_tolerance(dim: int) -> float:
    return 4 * float64_error(dim)


def order_videos_with_ties(scores: np.ndarray, keys: np.ndarray, tie: float) -> np.ndarray:
    """Indices of the exact float64 video scores `scores` (V,) best first; scores within `tie`
    of their group's leader are ordered by ascending video `keys` (V,)."""
    by_score = np.lexsort((keys, -scores))
    out: list[np.ndarray] = []
    i = 0
    while i < len(by_score):
        leader = scores[by_score[i]]
        j = i + 1
        while j < len(by_score) and scores[by_score[j]] >= leader - tie:
            j += 1
        group = by_score[i:j]
        out.append(group[np.argsort(keys[group], kind="stable")])
        i = j
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def first_best(scores: np.ndarray, tie: float) -> int:
    """The first clip whose score is within `tie` of the best."""
    return int(np.flatnonzero(scores >= scores.max() - tie)[0])

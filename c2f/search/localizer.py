"""Training-free localizer (zero-shot backend): moments from one video's query-clip similarity curve.

- normalised curve = the raw similarity min-max normalised per video to [0, 1] (flat -> all ones);
  importance = the same after a 3-clip moving average (edges repeated): the curve the UI plots.
- candidates = maximal runs of clips at or above tau, for tau in TAUS, on both the importance curve
  (robust to noise) and the normalised raw curve (exact edges): a watershed-like sweep where high
  levels isolate peaks and low levels give whole events.
- selection: candidates are ranked by contrast * sqrt(span length), contrast = mean raw similarity
  inside - mean outside (the whole-video mean when the span covers the video): a z-like statistic,
  so a span must stand out from the rest of its video, and a one-clip noise spike does not beat
  the event it sits on; a candidate is dropped when more than `overlap` of the shorter of it and an already kept
  span is shared (no nested or near-duplicate moments).
- near-ties (within c2f.ranking.SCORE_TOLERANCE, far above float noise) go to the earlier, then the
  shorter span, so the choice is the same on every CPU whatever its kernels round.
- score of a kept span = mean raw similarity inside it: a cosine, comparable across videos of one
  search; the kept spans are returned best score first (near-ties: earlier, then shorter).
- start/end "probabilities" (for plotting) = softmax(sharpness * rise) and softmax(sharpness * fall)
  of the mean of the normalised and importance curves, zero-padded at both ends so a moment may
  start at clip 0 or end at N-1.
Spans are inclusive clip index pairs (first, last) on the clip grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from c2f.ranking import SCORE_TOLERANCE, order_cosines_with_ties, pick_best, tiebreak_rank

TAUS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class Localization:
    importance: np.ndarray  # (N,) in [0, 1]
    start_prob: np.ndarray  # (N,) sums to 1
    end_prob: np.ndarray  # (N,) sums to 1
    spans: list[tuple[int, int, float]]  # (first clip, last clip) inclusive, score; best first


def smooth(x: np.ndarray, window: int = 3) -> np.ndarray:
    """Moving average of odd `window`, edges repeated; same length as x."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2 or window <= 1:
        return x.copy()
    pad = window // 2
    return np.convolve(np.pad(x, pad, mode="edge"), np.ones(window) / window, mode="valid")


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def shared_fraction(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Clips two inclusive spans share, over the length of the shorter one."""
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]) + 1)
    return inter / min(a[1] - a[0] + 1, b[1] - b[0] + 1)


def runs_above(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True as inclusive (first, last) index pairs."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def min_max(x: np.ndarray) -> np.ndarray:
    """x scaled to [0, 1]; a curve flat within SCORE_TOLERANCE (float noise) is all ones."""
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi - lo > SCORE_TOLERANCE else np.ones_like(x)


def level_margin(curve: np.ndarray) -> float:
    """SCORE_TOLERANCE expressed on the min-max normalised scale of `curve` (at most 0.01)."""
    spread = float(curve.max() - curve.min())
    return min(0.01, SCORE_TOLERANCE / spread) if spread > SCORE_TOLERANCE else 0.0


def importance_curve(similarity: np.ndarray) -> np.ndarray:
    return min_max(smooth(similarity))  # (N,)


def boundary_probs(importance: np.ndarray, sharpness: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    padded = np.concatenate([[0.0], importance, [0.0]])  # (N + 2,)
    rise = np.maximum(padded[1:-1] - padded[:-2], 0.0)  # (N,) step into clip i
    fall = np.maximum(padded[1:-1] - padded[2:], 0.0)  # (N,) step out of clip i
    return softmax(sharpness * rise), softmax(sharpness * fall)


def localize_curve(similarity: np.ndarray, max_spans: int = 3, overlap: float = 0.5) -> Localization:
    sim = np.asarray(similarity, dtype=np.float64)  # (N,)
    if sim.ndim != 1 or len(sim) == 0 or not np.isfinite(sim).all():
        raise ValueError(f"need a finite 1-d similarity curve, got shape {sim.shape}")
    importance = importance_curve(sim)
    normalised = min_max(sim)
    start_prob, end_prob = boundary_probs(0.5 * (importance + normalised))
    total = sim.sum()
    contrast: dict[tuple[int, int], float] = {}
    # A clip within SCORE_TOLERANCE (raw similarity units) of a level counts as reaching it, so a
    # value sitting on a level (0.5 of a 3-level curve) gives the same runs whatever the rounding.
    margin_imp = level_margin(smooth(sim))
    margin_norm = level_margin(sim)
    for tau in TAUS:
        runs = runs_above(importance >= tau - margin_imp) + runs_above(normalised >= tau - margin_norm)
        for a, b in runs:
            inside = sim[a : b + 1].mean()
            n_out = len(sim) - (b - a + 1)
            outside = (total - sim[a : b + 1].sum()) / n_out if n_out else sim.mean()
            contrast[(a, b)] = float((inside - outside) * np.sqrt(b - a + 1))
    spans = list(contrast)  # candidates, (a, b) inclusive
    first = np.array([a for a, _ in spans])
    last = np.array([b for _, b in spans])
    value = np.array([contrast[sp] for sp in spans])
    rank = tiebreak_rank([first, last - first])  # earlier, then shorter
    alive = np.ones(len(spans), bool)
    kept: list[tuple[int, int]] = []
    while len(kept) < max_spans:
        i = pick_best(value, rank, alive, SCORE_TOLERANCE)
        if i < 0:
            break
        a, b = spans[i]
        kept.append((a, b))
        # Drop every candidate sharing more than `overlap` of the shorter of it and the kept span.
        inter = np.maximum(0, np.minimum(last, b) - np.maximum(first, a) + 1)
        alive &= inter <= overlap * np.minimum(last - first + 1, b - a + 1)
    scores = [float(sim[a : b + 1].mean()) for a, b in kept]
    order = order_cosines_with_ties(scores, [[a for a, _ in kept], [b - a for a, b in kept]])
    spans_out = [(kept[i][0], kept[i][1], scores[i]) for i in order]
    return Localization(importance=importance, start_prob=start_prob, end_prob=end_prob, spans=spans_out)

"""Segments of consecutive clips with a centroid and a radius: the upper bounds of exact search.

For a unit query q and every clip x of a segment with centroid c and radius r = max ||x - c||,
Cauchy-Schwarz gives q.x <= q.c + r. A segment is a run of consecutive clips of one video whose
neighbours have cosine >= CUT_COSINE (roughly a shot), cut every MAX_SEGMENT clips: shots of real
videos are tight, so their radii are small and the bounds prune well. On uncorrelated clips every
clip becomes its own segment with radius 0, and the bound is the exact clip score (a flat scan).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_SEGMENT = 12  # clips per segment at most
CUT_COSINE = 0.9  # a new segment starts where consecutive clips are less similar than this
# Added to every radius: covers float32 rounding of q.c and q.x (each off by < d * 2^-24 <= 3e-5
# for d <= 512 unit vectors), so a bound is never below a computed clip score.
BOUND_MARGIN = 1e-4
_ROWS_PER_CHUNK = 65_536  # bounds the (rows, d) temporaries while building


@dataclass
class Segments:
    """Per-segment arrays (S rows), in storage order."""

    video: np.ndarray  # (S,) int64 index of the video in the caller's table
    offset: np.ndarray  # (S,) int64 first clip of the segment within its video
    length: np.ndarray  # (S,) int64 clips in the segment
    centroid: np.ndarray  # (S, d) float32
    radius: np.ndarray  # (S,) float32, BOUND_MARGIN included

    @classmethod
    def empty(cls, dim: int) -> Segments:
        z = np.zeros(0, np.int64)
        return cls(z, z.copy(), z.copy(), np.zeros((0, dim), np.float32), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.length)

    def select(self, keep: np.ndarray) -> Segments:
        return Segments(
            self.video[keep], self.offset[keep], self.length[keep], self.centroid[keep], self.radius[keep]
        )

    @staticmethod
    def concat(parts: list[Segments]) -> Segments:
        return Segments(*(np.concatenate([getattr(p, f) for p in parts]) for f in Segments.__annotations__))


def build_segments(vectors: np.ndarray, lengths: np.ndarray) -> Segments:
    """Segments of videos stored back to back: `vectors` (sum(lengths), d) unit rows, float32 or
    float16 (bounds then hold for the stored float16 values); `lengths` (V,) clips per video."""
    lengths = np.asarray(lengths, np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    parts: list[Segments] = []
    v0 = 0
    while v0 < len(lengths):  # whole videos per chunk, about _ROWS_PER_CHUNK rows
        v1 = max(v0 + 1, int(np.searchsorted(starts, starts[v0] + _ROWS_PER_CHUNK, side="right")) - 1)
        v1 = min(v1, len(lengths))
        x = np.asarray(vectors[starts[v0] : starts[v1]], dtype=np.float32)  # (n, d)
        part = _segments_of_chunk(x, lengths[v0:v1])
        part.video += v0
        parts.append(part)
        v0 = v1
    return Segments.concat(parts) if parts else Segments.empty(vectors.shape[1])


def _segments_of_chunk(x: np.ndarray, lengths: np.ndarray) -> Segments:
    n = len(x)
    video_of_row = np.repeat(np.arange(len(lengths)), lengths)  # (n,)
    first_of_video = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    cut = np.zeros(n, bool)
    cut[first_of_video] = True
    consecutive = np.einsum("nd,nd->n", x[1:], x[:-1])  # (n-1,) cosine of neighbours
    cut[1:] |= consecutive < CUT_COSINE
    # Cap runs at MAX_SEGMENT clips: position inside the run modulo the cap.
    run_start = np.maximum.accumulate(np.where(cut, np.arange(n), 0))
    cut |= (np.arange(n) - run_start) % MAX_SEGMENT == 0
    first = np.flatnonzero(cut)  # (S,)
    length = np.diff(np.append(first, n))
    centroid = (np.add.reduceat(x, first, axis=0) / length[:, None]).astype(np.float32)  # (S, d)
    seg_of_row = np.cumsum(cut) - 1
    dist2 = np.einsum("nd,nd->n", x - centroid[seg_of_row], x - centroid[seg_of_row])  # (n,)
    radius = np.sqrt(np.maximum.reduceat(dist2, first)).astype(np.float32) + np.float32(BOUND_MARGIN)
    video = video_of_row[first]
    return Segments(video, first - first_of_video[video], length, centroid, radius)

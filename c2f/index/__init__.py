"""Clip vector index (faiss) with exact video ranking by max over clips (paper Eq. 3)."""

from c2f.index.clip_index import (
    APPROX_MIN_VIDEOS,
    ClipIndex,
    ClipIndexError,
    VideoHit,
    brute_force_top_videos,
    measure_recall,
)

__all__ = [
    "APPROX_MIN_VIDEOS",
    "ClipIndex",
    "ClipIndexError",
    "VideoHit",
    "brute_force_top_videos",
    "measure_recall",
]

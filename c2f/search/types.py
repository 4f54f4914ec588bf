"""What a search returns: ranked moments and, per video, everything the UI plots."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Moment:
    video_id: str
    name: str  # original file name
    start: float  # seconds
    end: float  # seconds
    score: float  # moment score (comparable across videos of one search)
    video_score: float  # coarse score of its video (Eq. 3)


@dataclass
class VideoResult:
    video_id: str
    name: str
    path: str  # playable file
    video_score: float
    clip_times: np.ndarray  # (N, 2) seconds
    similarity: np.ndarray  # (N,) query-clip score in the retrieval space
    importance: np.ndarray  # (N,) in [0, 1]
    start_prob: np.ndarray  # (N,) sums to 1
    end_prob: np.ndarray  # (N,) sums to 1
    moments: list[Moment] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return float(self.clip_times[-1, 1]) if len(self.clip_times) else 0.0


@dataclass
class SearchResult:
    query: str
    backend_name: str
    moments: list[Moment]  # all moments, best first
    videos: list[VideoResult]  # coarse ranking, best first
    notes: list[str] = field(default_factory=list)  # e.g. "the query was cut to 77 tokens"
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage

    def to_dict(self) -> dict:
        """JSON-ready form (the CLI's --json output)."""
        return {
            "query": self.query,
            "backend": self.backend_name,
            "notes": self.notes,
            "timings_ms": {k: round(v, 2) for k, v in self.timings.items()},
            "moments": [
                {
                    "video_id": m.video_id,
                    "name": m.name,
                    "start": round(m.start, 3),
                    "end": round(m.end, 3),
                    "score": round(m.score, 6),
                    "video_score": round(m.video_score, 6),
                }
                for m in self.moments
            ],
            "videos": [
                {
                    "video_id": v.video_id,
                    "name": v.name,
                    "video_file": v.path,  # not "path": Gradio clients take {"path": ...} for an upload
                    "video_score": round(v.video_score, 6),
                    "clip_times": v.clip_times.round(3).tolist(),
                    "similarity": v.similarity.round(6).tolist(),
                    "importance": v.importance.round(4).tolist(),
                    "start_prob": v.start_prob.round(4).tolist(),
                    "end_prob": v.end_prob.round(4).tolist(),
                }
                for v in self.videos
            ],
        }

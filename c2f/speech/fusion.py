"""Scoring a query against the words said in each clip, and fusing that with the visual score.

- Each clip's transcript is the subtitle cue that owns it under HERO's alignment rule
  (c2f.features.subtitles.align_subtitles): one cue per clip, none for clips nobody speaks in.
- speech score of clip r = max(0, <q, t_c>) where q and t_c are the L2-normalised sentence
  embeddings of the query and of the clip's cue c; a clip without words scores 0. Negative cosines
  are cut to 0 ("unrelated", like silence): then no clip's speech score is below a silent clip's,
  and the fused video ranking can start from the visual index without missing a video (see
  c2f.search.zero_shot).
- fused score of clip r = (1 - w) * visual_r + w * speech_r, w in [0, 1] set by the user
  (w = 0: visual only, today's behaviour; w = 1: speech only).
"""

from __future__ import annotations

import numpy as np

from c2f.features.store import Subtitle
from c2f.features.subtitles import align_subtitles

# CLIP ViT-B/32 text-image cosines of a good match exceed a poor one by about 0.1 (they live around
# 0.2-0.35), while sentence-embedding cosines of a paraphrase exceed unrelated text by about 0.5.
# w = 0.15 gives both evidences a similar pull: 0.85 * 0.1 ~ 0.15 * 0.5. An estimate from those
# typical ranges, not a measurement (no weights here): README "Speech" says how to tune it.
DEFAULT_SPEECH_WEIGHT = 0.15
MATCH_MODES = ("visual", "speech", "both")


def clip_owners(subtitles: list[Subtitle], num_clips: int, clip_seconds: float) -> np.ndarray:
    """(N,) int64: the cue each clip's words come from, -1 for a clip without words."""
    return align_subtitles(subtitles, num_clips, clip_seconds).clip_to_subtitle


def speech_curve(query: np.ndarray, cue_vectors: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """query (d,), cue_vectors (S, d) L2-normalised, owners (N,) -> (N,) float64 speech scores."""
    if len(cue_vectors) == 0:
        return np.zeros(len(owners))
    per_cue = np.maximum(cue_vectors.astype(np.float64) @ query.astype(np.float64), 0.0)  # (S,)
    return np.where(owners >= 0, per_cue[np.maximum(owners, 0)], 0.0)


def fuse(visual: np.ndarray, speech: np.ndarray, weight: float) -> np.ndarray:
    """(N,) fused clip scores (1 - w) * visual + w * speech."""
    return (1.0 - weight) * np.asarray(visual, np.float64) + weight * np.asarray(speech, np.float64)


def weight_for(match: str, speech_weight: float) -> float:
    """The w a match mode implies: visual 0, speech 1, both the user's weight (checked)."""
    from c2f.errors import QueryError

    if match not in MATCH_MODES:
        raise QueryError(f"unknown match mode {match!r}: use one of {', '.join(MATCH_MODES)}")
    if not 0.0 <= speech_weight <= 1.0:
        raise QueryError(f"the speech weight must be between 0 and 1, not {speech_weight}")
    return {"visual": 0.0, "speech": 1.0}.get(match, speech_weight)

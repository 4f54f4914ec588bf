"""Windows of long videos: the model's position tables cover `max_clips` clips, so a longer video is
seen through windows of at most max_clips clips, never cut. Inference encodes consecutive aligned
windows [k*M, (k+1)*M); training picks, per video of a batch, the window holding its moments."""

from __future__ import annotations

from collections.abc import Sequence

from c2f.model.c2f import VideoInput


def window_video(video: VideoInput, start: int, length: int) -> VideoInput:
    """Clips [start, start + length) of a video, its segments cut and renumbered to the window."""
    segs = [(c[(c >= start) & (c < start + length)] - start, t) for c, t in video.segments]
    return VideoInput(video.feats[start : start + length], [(c, t) for c, t in segs if len(c)])


def _window_for(i: int, j: int, num_clips: int, max_clips: int) -> int:
    """Start of a window of max_clips clips holding the inclusive span (i, j), j - i < max_clips:
    the aligned inference window when it holds the span, else one centred on it."""
    aligned = (i // max_clips) * max_clips
    if j < aligned + max_clips:
        return aligned
    centred = i - (max_clips - (j - i + 1)) // 2
    return max(0, min(centred, num_clips - max_clips))


def choose_window(
    num_clips: int, spans: Sequence[tuple[int, int]], max_clips: int
) -> tuple[int, int, list[bool]]:
    """(start, length, inside) for the queries `spans` (inclusive clip spans, in batch order) of one
    video: a window of at most max_clips clips; inside[k] says whether span k lies wholly in it
    (only those get localizer labels). The window holds every span when they fit together, else
    the first span that fits."""
    if num_clips <= max_clips:
        return 0, num_clips, [True] * len(spans)
    lo, hi = min(i for i, _ in spans), max(j for _, j in spans)
    if hi - lo < max_clips:
        start = _window_for(lo, hi, num_clips, max_clips)
    else:
        fitting = [(i, j) for i, j in spans if j - i < max_clips]
        start = _window_for(*fitting[0], num_clips, max_clips) if fitting else (spans[0][0] // max_clips) * max_clips
    length = min(max_clips, num_clips - start)
    return start, length, [start <= i and j < start + length for i, j in spans]

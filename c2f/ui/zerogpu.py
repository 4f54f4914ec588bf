"""ZeroGPU on Hugging Face Spaces: ask for the GPU only around the heavy calls, for as long as their
work needs (indexing time grows with the length of the uploaded videos)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from c2f.errors import C2FError

BASE_SECONDS = 20  # model on the GPU, the query, the index
INDEX_SECONDS_PER_VIDEO_MINUTE = 6  # decode + encode one minute of video, with a margin
SEARCH_SECONDS = 15
MAX_SECONDS = 300


def index_seconds(paths: list[str | Path]) -> int:
    """GPU seconds to index these uploads: a base plus a share per minute of video."""
    from c2f.video import probe_video

    minutes = 0.0
    for p in paths:
        try:
            minutes += probe_video(Path(p)).duration / 60
        except (C2FError, OSError):
            continue  # refused later, with its reason; costs nothing here
    return int(min(MAX_SECONDS, BASE_SECONDS + INDEX_SECONDS_PER_VIDEO_MINUTE * minutes))


def on_zerogpu() -> bool:
    """True on a ZeroGPU Space (the platform sets SPACES_ZERO_GPU, as the `spaces` package reads it)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def import_spaces_first() -> None:
    """On ZeroGPU, import `spaces` (the platform installs it) before anything touches CUDA: it
    refuses to load afterwards. Elsewhere nothing."""
    if on_zerogpu():
        try:
            import spaces  # noqa: F401
        except ImportError as exc:
            raise C2FError("this Space runs on ZeroGPU but the `spaces` package is missing") from exc


def gpu(duration: int | Callable[..., int]):
    """`spaces.GPU(duration=...)` on a ZeroGPU Space, else the function unchanged."""
    try:
        import spaces
    except ImportError:
        return lambda fn: fn
    return spaces.GPU(duration=duration)

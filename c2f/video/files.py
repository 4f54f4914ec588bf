"""Which files are videos: extensions C2F reads, and folder expansion."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}


def videos_in(path: str | Path) -> list[Path]:
    """A folder's video files (searched recursively, sorted; none for a folder named like a video,
    e.g. dir.mp4, that holds none), or the path itself when it is not a folder (kept even when
    missing or not a video, so that it is reported)."""
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_EXTENSIONS and f.is_file())
    return [p]


def find_videos(paths: Iterable[str | Path]) -> list[Path]:
    """`videos_in` of each path, in order."""
    return [video for item in paths for video in videos_in(item)]

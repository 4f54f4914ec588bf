"""Which files are videos: extensions C2F reads, and folder expansion."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}


def find_videos(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given (kept even when missing, so they are reported); folders searched recursively."""
    found: list[Path] = []
    for item in paths:
        p = Path(item)
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_EXTENSIONS and f.is_file())
        else:
            found.append(p)
    return found

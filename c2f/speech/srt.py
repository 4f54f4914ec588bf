"""SubRip (.srt) output: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, a blank line after each."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from c2f.speech.transcript import Segment


def srt_time(seconds: float) -> str:
    """12.3456 -> '00:00:12,346' (rounded to the millisecond; negative times clamp to 0)."""
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def format_srt(segments: Iterable[Segment]) -> str:
    """Segments with text, in order, as SubRip text (cues are never empty: blank text is skipped,
    and line breaks inside a text are collapsed so that a cue cannot end early)."""
    cues = []
    for seg in segments:
        text = " ".join(seg.text.split())
        if text:
            n = len(cues) + 1
            cues.append(f"{n}\n{srt_time(seg.start)} --> {srt_time(seg.end)}\n{text}\n")
    return "\n".join(cues)


def write_srt(segments: Iterable[Segment], path: str | Path) -> Path:
    """UTF-8 .srt (no BOM), created with its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_srt(segments), encoding="utf-8")
    return path

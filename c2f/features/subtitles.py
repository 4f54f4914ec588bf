"""Subtitles: read .srt / .vtt sidecar files and align them to clips as HERO does."""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from c2f.errors import SubtitleError
from c2f.features.store import Subtitle
from c2f.textfile import decode_text

_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{1,2})[,.](\d{1,3})"
_CUE = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")
_TAG = re.compile(r"<[^>]+>|\{\\[^}]*\}")


def _seconds(h: str | None, m: str, s: str, ms: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000.0


# Subtitles are text from many editors: after a BOM and UTF-8, the Windows Western code page (what
# "ANSI" means on most machines), then Latin-1, which decodes any byte.
SUBTITLE_FALLBACK_ENCODINGS = ("cp1252", "latin-1")


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SubtitleError(f"{path}: cannot read subtitles ({exc.strerror or exc})") from None
    return decode_text(data, SUBTITLE_FALLBACK_ENCODINGS)[0]  # latin-1 last: never fails


def _parse(text: str) -> tuple[list[Subtitle], list[tuple[int, str]]]:
    """(cues in time order, [(line number, why a cue was skipped)])."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    subs: list[Subtitle] = []
    problems: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _CUE.match(line)
        if not m and "-->" in line:  # a timing line we cannot read: skip its cue, say where
            problems.append((i + 1, f"unreadable cue timing {line.strip()!r}"))
            i += 1
            while i < len(lines) and lines[i].strip() and not _CUE.match(lines[i]):
                i += 1
            continue
        if not m:
            if line.strip().upper().startswith(("NOTE", "STYLE", "REGION")):
                while i < len(lines) and lines[i].strip():  # skip the whole block
                    i += 1
            i += 1
            continue
        start, end = _seconds(*m.groups()[:4]), _seconds(*m.groups()[4:])
        line_number = i + 1
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() and not _CUE.match(lines[i]):
            body.append(html.unescape(_TAG.sub("", lines[i])).strip())  # VTT escapes &amp; &lt;
            i += 1
        # An index line of the next SRT cue may have been swallowed when blank lines are missing.
        if body and body[-1].isdigit() and i < len(lines) and _CUE.match(lines[i]):
            body.pop()
        if end < start:
            problems.append((line_number, f"cue ends before it starts ({line.strip()})"))
            continue
        subs.append(Subtitle(start=start, end=end, text=" ".join(b for b in body if b)))
    if not subs and not problems and text.strip() and not text.lstrip().startswith("WEBVTT"):
        problems.append((0, "no subtitle cue found (expected 'HH:MM:SS,mmm --> HH:MM:SS,mmm' lines)"))
    return sorted(subs, key=lambda s: (s.start, s.end)), problems


def _describe(path: Path, problem: tuple[int, str]) -> str:
    line, why = problem
    return f"{path}: line {line}: {why}" if line else f"{path}: {why}"


def read_subtitles(path: str | Path) -> list[Subtitle]:
    """Parse SubRip or WebVTT strictly: SubtitleError naming the file and line at the first bad cue.

    Handles a BOM, UTF-16/32, CRLF, missing indices, NOTE/STYLE blocks, tags and multi-line cues;
    text that is not UTF-8 is read as cp1252, then Latin-1 (SUBTITLE_FALLBACK_ENCODINGS)."""
    path = Path(path)
    subs, problems = _parse(_decode(path))
    if problems:
        raise SubtitleError(_describe(path, problems[0]))
    return subs


def read_usable_subtitles(path: str | Path) -> tuple[list[Subtitle], str | None]:
    """The cues that can be read, and one line saying what was left out (None for a clean file).

    For indexing: a subtitle file must never cost its video. Bad cues are skipped and the good ones
    kept (one typo should not lose a film's dialogue); a file that cannot be read, or holds no
    readable cue, gives no cues and the reason."""
    path = Path(path)
    try:
        subs, problems = _parse(_decode(path))
    except SubtitleError as exc:
        return [], str(exc)
    if not problems:
        return subs, None
    first = _describe(path, problems[0])
    if not subs:
        return [], f"{first}; no cue could be read"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return subs, f"{first}{more}; {len(problems)} cue(s) skipped, {len(subs)} kept"


def find_sidecar_subtitles(video_path: str | Path) -> Path | None:
    """`movie.srt` / `movie.vtt` (also `movie.en.srt`) next to `movie.mp4`."""
    video_path = Path(video_path)
    for ext in (".srt", ".vtt"):
        exact = video_path.with_suffix(ext)
        if exact.is_file():
            return exact
    for cand in sorted(video_path.parent.glob(f"{video_path.stem}.*")):
        if cand.suffix.lower() in (".srt", ".vtt") and cand.is_file():
            return cand
    return None


@dataclass
class SubtitleAlignment:
    clip_to_subtitle: np.ndarray  # (N,) int64: subtitle index of each clip, -1 = unmatched
    segments: list[tuple[int, np.ndarray]]  # (subtitle index or -1, clip indices) in time order


def align_subtitles(subs: list[Subtitle], num_clips: int, clip_seconds: float = 1.5) -> SubtitleAlignment:
    """HERO rule: subtitle [s, e] covers clips floor(s/cs) .. ceil(e/cs)-1; each clip goes to the one
    covering subtitle with the highest temporal IoU (ties: the earlier subtitle); clips no subtitle
    covers are unmatched (-1). Without subtitles the video is split into groups of 5 clips with no
    text (index -1).

    Segments are runs of consecutive clips with the same owner, in time order, and every clip is in
    exactly one segment: the cross-modal transformer runs once per segment on [its clips ; its
    subtitle's tokens] (no tokens for -1). Runs of unmatched clips are cut into pieces of at most 5.
    A subtitle whose clips are interrupted by a tighter subtitle's clip gives two segments with the
    same index (rare; each still sees its own clips only).
    """
    owner = np.full(num_clips, -1, dtype=np.int64)
    best = np.zeros(num_clips)
    for k, sub in enumerate(subs):
        first = math.floor(sub.start / clip_seconds)
        last = min(num_clips, max(first + 1, math.ceil(sub.end / clip_seconds))) - 1
        for c in range(max(first, 0), last + 1):
            cs, ce = c * clip_seconds, (c + 1) * clip_seconds
            inter = max(0.0, min(ce, sub.end) - max(cs, sub.start))
            union = max(ce, sub.end) - min(cs, sub.start)
            iou = inter / union if union > 0 else 0.0
            if iou > best[c] or (owner[c] == -1 and iou >= best[c] and inter > 0):
                best[c], owner[c] = iou, k
    segments: list[tuple[int, np.ndarray]] = []
    c = 0
    while c < num_clips:
        e = c + 1
        if owner[c] >= 0:
            while e < num_clips and owner[e] == owner[c]:
                e += 1
        else:
            while e < num_clips and owner[e] == -1 and e - c < 5:
                e += 1
        segments.append((int(owner[c]), np.arange(c, e)))
        c = e
    return SubtitleAlignment(clip_to_subtitle=owner, segments=segments)

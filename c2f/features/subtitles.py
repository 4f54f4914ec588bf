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
    # (subtitle index or -1, its clip indices, ascending): one f_cross pass each, see align_subtitles
    segments: list[tuple[int, np.ndarray]]


# HERO (scripts/prepro_sub.py): the last subtitle of a video, when it lasts more than 16 s (its end
# cut to the video's end), keeps only its first 11 clips: an end credit or a cue left on screen.
LONG_LAST_SUBTITLE_SECONDS = 16.0
LONG_LAST_SUBTITLE_CLIPS = 11
VIDEO_ONLY_GROUP = 5  # clips per text-less segment of a video without subtitles


def align_subtitles(subs: list[Subtitle], num_clips: int, clip_seconds: float = 1.5) -> SubtitleAlignment:
    """HERO's rule (scripts/prepro_sub.py, data/data.py), with clip r = [r cs, (r + 1) cs):

    - subtitle [s, e] is a candidate for clips floor(s/cs) .. ceil(e/cs) - 1 (none when it starts
      at or after the video's end; a zero-length cue on a clip boundary covers none);
    - the last subtitle (in start order), when min(e, video end) - s > 16 s, keeps only the first
      11 of those clips;
    - each clip goes to the candidate with the highest temporal IoU (ties: the earlier subtitle);
      a clip with no candidate is unmatched (-1).

    Segments, one pass of the cross-modal transformer each: one per subtitle that owns at least one
    clip, with all its clips (not always consecutive: a tighter subtitle may take a clip in the
    middle), in subtitle order. Unmatched clips of a subtitled video are in no segment: they get no
    f_cross output (zeros), only the residual branch, as in HERO. A video without subtitles is cut
    into groups of 5 clips with no text (index -1).

    Where C2F departs from HERO (both rare): a subtitle that owns no clip gets no segment (HERO runs
    its text alone through f_cross, which cannot change V_temp); a clip whose candidates all have
    IoU 0 (zero-length cues) goes to the earliest candidate, where HERO's loop gives it to the
    video's subtitle 0 whether or not that one covers it. IoU is computed in float64 (HERO: float32).
    """
    owner = np.full(num_clips, -1, dtype=np.int64)
    if not subs or num_clips == 0:
        groups = range(0, num_clips, VIDEO_ONLY_GROUP)
        return SubtitleAlignment(owner, [(-1, np.arange(g, min(g + VIDEO_ONLY_GROUP, num_clips))) for g in groups])
    video_end = num_clips * clip_seconds
    order = sorted(range(len(subs)), key=lambda k: subs[k].start)  # HERO's subtitles are in start order
    best = np.zeros(num_clips)
    for rank, k in enumerate(order):
        sub = subs[k]
        if sub.start >= video_end:
            continue
        candidates = list(range(math.floor(sub.start / clip_seconds), math.ceil(sub.end / clip_seconds)))
        if rank == len(order) - 1 and min(sub.end, video_end) - sub.start > LONG_LAST_SUBTITLE_SECONDS:
            candidates = candidates[:LONG_LAST_SUBTITLE_CLIPS]
        s, e = sub.start / clip_seconds, sub.end / clip_seconds  # in clip units, as HERO
        for c in candidates:
            if not 0 <= c < num_clips:
                continue
            inter = min(c + 1, e) - max(c, s)
            iou = inter / (max(c + 1, e) - min(c, s)) if inter > 0 else 0.0
            if owner[c] == -1 or iou > best[c]:  # strictly better: ties stay with the earlier one
                best[c], owner[c] = iou, k
    segments = [(k, np.flatnonzero(owner == k)) for k in order]
    return SubtitleAlignment(owner, [(k, clips) for k, clips in segments if len(clips)])

"""TVR-format annotations: one JSON object per line, bad rows reported with their line numbers.

    {"vid_name": str, "duration": float, "ts": [st, ed], "desc": str, "desc_id": int|str,
     "type": "v" | "t" | "vt"}   (type optional outside TVR)

Clip spans are INCLUSIVE on both ends (ARCHITECTURE.md): clip i covers [i*cs, (i+1)*cs);
a span (i, j) covers seconds [i*cs, min((j+1)*cs, duration)].
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from c2f.errors import AnnotationError
from c2f.textfile import decode_text, locate_decode_error

QUERY_TYPES = ("v", "t", "vt")


@dataclass(frozen=True)
class TVRQuery:
    desc_id: int | str
    desc: str
    vid_name: str
    duration: float
    ts: tuple[float, float]  # seconds
    type: str | None = None

    def to_json(self) -> dict:
        d = {
            "desc_id": self.desc_id,
            "desc": self.desc,
            "vid_name": self.vid_name,
            "duration": self.duration,
            "ts": list(self.ts),
        }
        if self.type is not None:
            d["type"] = self.type
        return d


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_row(
    row: object, known_videos: Mapping[str, float] | None, clip_seconds: float
) -> tuple[TVRQuery | None, str | None]:
    if not isinstance(row, dict):
        return None, "not a JSON object"
    missing = [k for k in ("vid_name", "ts", "desc", "desc_id") if k not in row]
    if missing:
        return None, f"missing key(s) {missing}"
    ts = row["ts"]
    if not isinstance(row["desc_id"], (int, str)) or isinstance(row["desc_id"], bool):
        return None, f"desc_id must be an integer or a string, got {row['desc_id']!r}"
    if not isinstance(row["vid_name"], str) or not row["vid_name"]:
        return None, f"vid_name must be a non-empty string, got {row['vid_name']!r}"
    if not (isinstance(ts, (list, tuple)) and len(ts) == 2 and all(_is_number(t) for t in ts)):
        return None, f"ts must be [start, end] in seconds, got {ts!r}"
    st, ed = float(ts[0]), float(ts[1])
    if not (math.isfinite(st) and math.isfinite(ed)):
        return None, "ts is not finite"
    if st < 0:
        return None, f"ts starts before 0 ({st})"
    if st > ed:
        return None, f"ts start {st} is after its end {ed}"
    vid = row["vid_name"]
    duration = row.get("duration")
    if known_videos is not None and vid not in known_videos:
        return None, f"unknown video {vid!r}"
    if duration is None and known_videos is None:
        return None, "no duration (and the video is not known)"
    if duration is not None and not (_is_number(duration) and math.isfinite(duration) and duration > 0):
        return None, f"duration must be a positive number of seconds, got {duration!r}"
    # the known length of the video (when given) is what ts must fit in, up to one clip
    limit = float(known_videos[vid]) if known_videos is not None else float(duration)
    duration = limit if duration is None else float(duration)
    if ed > limit + clip_seconds:
        return None, f"ts end {ed} is beyond the video's duration {limit}"
    qtype = row.get("type")
    if qtype is not None and qtype not in QUERY_TYPES:
        return None, f"type must be one of {QUERY_TYPES}, got {qtype!r}"
    desc = row["desc"]
    if not isinstance(desc, str) or not desc.strip():
        return None, "desc is empty"
    return TVRQuery(row["desc_id"], desc, vid, duration, (st, ed), qtype), None


def load_annotations(
    path: str | Path,
    known_videos: Mapping[str, float] | None = None,
    strict: bool = True,
    clip_seconds: float = 1.5,
) -> list[TVRQuery] | tuple[list[TVRQuery], list[tuple[int, str]]]:
    """Read a jsonl file. strict: raise AnnotationError listing every bad row; otherwise return
    (queries, problems) with problems = [(1-based line number, reason)]."""
    path = Path(path)
    queries: list[TVRQuery] = []
    problems: list[tuple[int, str]] = []
    seen: dict[object, int] = {}
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AnnotationError(str(path), [(0, f"cannot read the file ({exc.strerror or exc})")]) from None
    try:
        lines = decode_text(data)[0].splitlines()  # UTF-8, or UTF-16/32 with or without a BOM
    except UnicodeDecodeError as exc:
        line, why = locate_decode_error(data, exc)
        raise AnnotationError(str(path), [(line, f"{why}: save the file as UTF-8")]) from None
    for ln, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append((ln, f"invalid JSON ({exc.msg})"))
            continue
        query, why = _check_row(row, known_videos, clip_seconds)
        if why:
            problems.append((ln, why))
            continue
        if query.desc_id in seen:
            problems.append((ln, f"desc_id {query.desc_id!r} already used on line {seen[query.desc_id]}"))
            continue
        seen[query.desc_id] = ln
        queries.append(query)
    if not queries and not problems:
        problems.append((0, "no annotation rows"))
    if strict:
        if problems:
            raise AnnotationError(str(path), problems)
        return queries
    return queries, problems


def write_annotations(queries: list[TVRQuery], path: str | Path) -> Path:
    path = Path(path)
    path.write_text("".join(json.dumps(q.to_json()) + "\n" for q in queries), encoding="utf-8")
    return path


def span_to_clips(st: float, ed: float, clip_seconds: float, num_clips: int) -> tuple[int, int]:
    """Seconds -> inclusive clip span: i = floor(st/cs), j = max(ceil(ed/cs) - 1, i), clamped."""
    i = min(max(math.floor(st / clip_seconds + 1e-9), 0), num_clips - 1)
    j = min(max(math.ceil(ed / clip_seconds - 1e-9) - 1, i), num_clips - 1)
    return i, j


def clips_to_span(i: int, j: int, clip_seconds: float, duration: float) -> tuple[float, float]:
    """Inclusive clip span -> seconds [i*cs, min((j+1)*cs, duration)]."""
    return i * clip_seconds, min((j + 1) * clip_seconds, duration)

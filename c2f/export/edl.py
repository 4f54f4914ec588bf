"""CMX 3600 edit decision lists: the found moments as cuts an editor imports onto a timeline.

Written as Premiere Pro, DaVinci Resolve and Avid exchange file-based media: one cut event per
moment, reel `AX` and a `* FROM CLIP NAME:` comment naming the source file (editors relink by
it), source in/out at the source's own timecode (its embedded start timecode, else 00:00:00:00),
record in/out back to back on a timeline starting at 01:00:00:00. Out points are exclusive (the
first frame after the cut). `FCM:` says drop-frame or not; drop-frame timecodes use ';' before
the frames. One EDL holds one frame rate: moments of videos at other rates go to one EDL per rate.
ASCII title; at most 999 events (the format's event numbers have three digits).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from c2f.errors import C2FError
from c2f.export.timecode import Rate, TimecodeError, from_timecode, to_timecode

MAX_EVENTS = 999
RECORD_START = "01:00:00:00"  # where editors start a timeline


@dataclass(frozen=True)
class EdlEvent:
    clip_name: str  # the source file's name (FROM CLIP NAME)
    source_in: int  # frame numbers at the source's rate, on its timecode (start timecode included)
    source_out: int  # exclusive
    has_audio: bool = False  # the event cuts audio with the picture (track AA/V, else V)
    comment: str = ""  # one more comment line (e.g. the moment's score); ASCII


@dataclass(frozen=True)
class ParsedEvent:
    number: int
    reel: str
    track: str
    source_in: int
    source_out: int
    record_in: int
    record_out: int
    clip_name: str | None
    comments: list[str]


@dataclass(frozen=True)
class ParsedEdl:
    title: str
    drop_frame: bool
    events: list[ParsedEvent]


def ascii_line(text: str) -> str:
    """One line of printable ASCII (accents dropped, other characters '?')."""
    flat = unicodedata.normalize("NFKD", " ".join(str(text).split()))
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in flat if not unicodedata.combining(c))


def write_edl(title: str, events: list[EdlEvent], rate: Rate) -> str:
    """The EDL text (CRLF line ends, as the format's DOS origins and every importer accept)."""
    if not events:
        raise C2FError("no moment to put in an EDL")
    if len(events) > MAX_EVENTS:
        raise C2FError(f"an EDL holds at most {MAX_EVENTS} events, not {len(events)}: export fewer moments")
    lines = [f"TITLE: {ascii_line(title)[:70] or 'C2F moments'}"]
    lines.append(f"FCM: {'DROP FRAME' if rate.drop_frame else 'NON-DROP FRAME'}")
    record = from_timecode(RECORD_START, rate)
    for number, ev in enumerate(events, 1):
        if ev.source_out <= ev.source_in or ev.source_in < 0:
            raise C2FError(f"event {number}: empty source range {ev.source_in}-{ev.source_out}")
        length = ev.source_out - ev.source_in
        track = "AA/V" if ev.has_audio else "V"
        times = [to_timecode(f, rate) for f in (ev.source_in, ev.source_out, record, record + length)]
        lines.append("")
        lines.append(f"{number:03d}  {'AX':<8} {track:<5} C        {' '.join(times)}")
        lines.append(f"* FROM CLIP NAME: {' '.join(ev.clip_name.split())}")
        if ev.comment:
            lines.append(f"* {ascii_line(ev.comment)}")
        record += length
    return "\r\n".join(lines) + "\r\n"


_EVENT = re.compile(r"^(\d{3,})\s+(\S+)\s+(\S+)\s+(C|D|W\d{3}|K\s*[BO]?)\s+(?:\d{3}\s+)?(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$")


def parse_edl(text: str, rate: Rate) -> ParsedEdl:
    """Read back a CMX 3600 EDL (cut events, comments) at `rate`; C2FError naming the line for
    anything malformed. The FCM line decides drop-frame counting (';' in a timecode also means it)."""
    title, drop = "", rate.drop_frame
    rows: list[dict] = []  # one per event, its comments added as they come
    current: dict | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("TITLE:"):
            title = line[6:].strip()
        elif line.startswith("FCM:"):
            drop = "NON" not in line.upper()
        elif line.startswith("*"):
            if current is None:
                raise C2FError(f"line {number}: a comment before the first event")
            body = line[1:].strip()
            if body.upper().startswith("FROM CLIP NAME:"):
                current["clip_name"] = body.split(":", 1)[1].strip()
            else:
                current["comments"].append(body)
        else:
            m = _EVENT.match(line)
            if m is None:
                raise C2FError(f"line {number}: not a CMX 3600 event: {line!r}")
            counted = Rate(rate.fps, rate.base, drop or ";" in line)
            try:
                frames = [from_timecode(tc, counted) for tc in m.group(5, 6, 7, 8)]
            except TimecodeError as exc:
                raise C2FError(f"line {number}: {exc}") from None
            current = {
                "number": int(m[1]),
                "reel": m[2],
                "track": m[3],
                "source_in": frames[0],
                "source_out": frames[1],
                "record_in": frames[2],
                "record_out": frames[3],
                "clip_name": None,
                "comments": [],
            }
            rows.append(current)
    return ParsedEdl(title, drop, [ParsedEvent(**row) for row in rows])

"""Probe a video file with ffprobe (through ffmpeg-python): what it is, before decoding anything."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import ffmpeg

from c2f.errors import CorruptVideoError, EmptyVideoError, NotAFileError, NotAVideoError, NoVideoStreamError
from c2f.video.tools import ffprobe_complaint, ffprobe_exe


@dataclass(frozen=True)
class VideoInfo:
    path: str
    duration: float  # seconds of video stream
    fps: float  # average frame rate
    num_frames: int  # as reported (or estimated from duration x fps); may be off for broken containers
    width: int  # display width (after rotation)
    height: int  # display height (after rotation)
    rotation: int  # degrees clockwise the stored frames must be turned to show upright: 0/90/180/270
    codec: str
    container: str
    has_audio: bool
    # Timestamp of the video stream's start: decoded pts are reported relative to it, so the
    # first frame of a trimmed, offset or MPEG-TS file is at 0 s like in a player.
    start_time: float = 0.0
    # The start timecode stamped on the file by a camera or an editor ('01:00:00:00'), or None.
    timecode: str | None = None
    # The container's start (its earliest stream's, e.g. audio): ffmpeg's -ss counts from it.
    format_start_time: float = 0.0


def _rate(text: str | None) -> float:
    if not text or text in ("0/0", "0"):
        return 0.0
    num, _, den = text.partition("/")
    try:
        return float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return 0.0


def _seconds(text: object) -> float:
    """ffprobe number ("1.5", "N/A", None) or Matroska tag ("00:01:02.500000000") -> seconds; 0 if unknown."""
    if text is None:
        return 0.0
    try:
        value = float(str(text))
    except ValueError:
        hours_minutes, _, secs = str(text).rpartition(":")
        try:
            hh, _, mm = hours_minutes.rpartition(":")
            value = float(hh or 0) * 3600 + float(mm or 0) * 60 + float(secs)
        except ValueError:
            return 0.0
    return value if math.isfinite(value) else 0.0


def _stream_duration(stream: dict, fmt: dict) -> float:
    """Length of the video stream in seconds (not its end time)."""
    if _seconds(stream.get("duration")) > 0:
        return _seconds(stream.get("duration"))
    start = _seconds(stream.get("start_time"))
    # Matroska/WebM: ffmpeg's per-track DURATION tag is the end timestamp of the track.
    tags = {k.upper(): v for k, v in (stream.get("tags") or {}).items()}
    tag_end = _seconds(tags.get("DURATION"))
    if tag_end > start:
        return tag_end - start
    # The container duration runs from the earliest stream start (audio may start first).
    return _seconds(fmt.get("duration")) - max(0.0, start - _seconds(fmt.get("start_time")))


def _display_width(stream: dict) -> int:
    """Stored width stretched by the sample aspect ratio (anamorphic DVD/DV video is shown wider)."""
    width = int(stream.get("width") or 0)
    num, _, den = str(stream.get("sample_aspect_ratio") or "").partition(":")
    if num.isdigit() and den.isdigit() and int(num) > 0 and int(den) > 0 and num != den:
        width = round(width * int(num) / int(den))
    return width


def _rotation(stream: dict) -> int:
    """Display-matrix side data (modern) or the legacy `rotate` tag, normalised to 0/90/180/270."""
    angle = 0.0
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            # ffprobe reports the display matrix angle counter-clockwise (a phone video shot
            # upright says -90); checked against ffmpeg's own autorotation on a left/right split frame.
            angle = -float(side["rotation"])
            break
    else:
        tag = (stream.get("tags") or {}).get("rotate")  # legacy tag: already clockwise
        if tag:
            angle = float(tag)
    return round(angle / 90.0) % 4 * 90


_SIGNATURES = (b"\x1a\x45\xdf\xa3", b"RIFF", b"OggS", b"\x00\x00\x01\xba", b"FLV")


def _start_timecode(video: dict, streams: list[dict], fmt: dict) -> str | None:
    """The 'timecode' tag of the video stream, else of another stream (an mp4 tmcd track), else
    of the container."""
    for tags in [video.get("tags")] + [s.get("tags") for s in streams] + [fmt.get("tags")]:
        value = (tags or {}).get("timecode")
        if value:
            return str(value).strip()
    return None


def _looks_like_media(path: Path) -> bool:
    """Container magic bytes: such a file that ffprobe rejects is damaged, not a non-video."""
    head = path.open("rb").read(16)
    return head.startswith(_SIGNATURES) or head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide")


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Raise a typed `VideoError` for anything that is not a usable video."""
    p = Path(path)
    if not p.exists():
        raise NotAFileError(str(p), "file not found")
    if not p.is_file():
        raise NotAFileError(str(p), "not a regular file")
    if p.stat().st_size == 0:
        raise EmptyVideoError(str(p), "the file is empty (0 bytes)")
    try:
        meta = ffmpeg.probe(str(p), cmd=ffprobe_exe())
    except ffmpeg.Error as exc:
        why = ffprobe_complaint((exc.stderr or b"").decode(errors="replace"), p)
        if _looks_like_media(p):
            raise CorruptVideoError(str(p), f"the video file is damaged or truncated ({why})") from None
        raise NotAVideoError(str(p), f"not a video file ffmpeg can read ({why})") from None
    except json.JSONDecodeError:
        raise NotAVideoError(str(p), "not a video file ffmpeg can read") from None
    streams = meta.get("streams", [])
    fmt = meta.get("format", {})
    video = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    if not video:
        kinds = sorted({s.get("codec_type", "?") for s in streams}) or ["none"]
        raise NoVideoStreamError(str(p), f"no video stream (streams found: {', '.join(kinds)})")
    vs = video[0]
    container = str(fmt.get("format_name", "unknown"))
    if container == "image2" or container.endswith("_pipe"):
        raise NotAVideoError(str(p), f"a still image ({vs.get('codec_name', container)}), not a video")
    fps = _rate(vs.get("avg_frame_rate")) or _rate(vs.get("r_frame_rate"))
    duration = _stream_duration(vs, fmt)
    if duration <= 0:
        raise EmptyVideoError(str(p), "the video stream has zero duration")
    nb = vs.get("nb_frames")
    num_frames = (
        int(nb) if nb and str(nb).isdigit() and int(nb) > 0 else max(1, round(duration * (fps or 25.0)))
    )
    w, h = _display_width(vs), int(vs.get("height") or 0)
    if w <= 0 or h <= 0:
        raise EmptyVideoError(str(p), "the video stream has no picture size (no decodable frame)")
    rot = _rotation(vs)
    if rot in (90, 270):
        w, h = h, w
    return VideoInfo(
        path=str(p),
        duration=round(duration, 6),
        fps=fps or num_frames / duration,
        num_frames=num_frames,
        width=w,
        height=h,
        rotation=rot,
        codec=str(vs.get("codec_name", "unknown")),
        container=container,
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
        start_time=_seconds(vs.get("start_time")),
        timecode=_start_timecode(vs, streams, fmt),
        format_start_time=_seconds(fmt.get("start_time")),
    )

"""Probe a video file with ffprobe (through ffmpeg-python): what it is, before decoding anything."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import ffmpeg

from c2f.errors import CorruptVideoError, EmptyVideoError, NotAFileError, NotAVideoError, NoVideoStreamError
from c2f.video.tools import ffprobe_exe


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


def _rate(text: str | None) -> float:
    if not text or text in ("0/0", "0"):
        return 0.0
    num, _, den = text.partition("/")
    try:
        return float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return 0.0


def _rotation(stream: dict) -> int:
    """Display-matrix side data (modern) or the legacy `rotate` tag, normalised to 0/90/180/270."""
    angle = 0.0
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            # Checked against ffmpeg's own autorotation: this sign is the clockwise turn.
            angle = float(side["rotation"])
            break
    else:
        tag = (stream.get("tags") or {}).get("rotate")
        if tag:
            angle = float(tag)
    return round(angle / 90.0) % 4 * 90


_SIGNATURES = (b"\x1a\x45\xdf\xa3", b"RIFF", b"OggS", b"\x00\x00\x01\xba", b"FLV")


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
        detail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        why = detail[-1] if detail else "ffprobe could not read it"
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
    fps = _rate(vs.get("avg_frame_rate")) or _rate(vs.get("r_frame_rate"))
    duration = float(vs.get("duration") or 0.0) or float(fmt.get("duration") or 0.0)
    if not math.isfinite(duration) or duration <= 0:
        raise EmptyVideoError(str(p), "the video stream has zero duration")
    nb = vs.get("nb_frames")
    num_frames = (
        int(nb) if nb and str(nb).isdigit() and int(nb) > 0 else max(1, round(duration * (fps or 25.0)))
    )
    w, h = int(vs.get("width") or 0), int(vs.get("height") or 0)
    if w <= 0 or h <= 0:
        raise EmptyVideoError(str(p), "the video stream has no picture size (no decodable frame)")
    rot = _rotation(vs)
    if rot in (90, 270):
        w, h = h, w
    return VideoInfo(
        path=str(p),
        duration=duration,
        fps=fps or num_frames / duration,
        num_frames=num_frames,
        width=w,
        height=h,
        rotation=rot,
        codec=str(vs.get("codec_name", "unknown")),
        container=str(fmt.get("format_name", "unknown")),
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
    )

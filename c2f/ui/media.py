"""Playable cuts of predicted moments and thumbnails, cached under the library's cache folder."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from c2f.errors import C2FError
from c2f.video.tools import ffmpeg_exe


def _cached(cache: Path, key: str, suffix: str) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    return cache / (hashlib.sha1(key.encode()).hexdigest()[:16] + suffix)


def cut_span(
    video: str | Path, start: float, end: float, cache: Path, pad: float = 0.5, height: int = 360
) -> Path:
    """A small H.264 mp4 of [start - pad, end + pad] that every browser plays."""
    st = max(0.0, start - pad)
    dur = max(0.1, end + pad - st)
    out = _cached(cache, f"{video}|{st:.3f}|{dur:.3f}|{height}", ".mp4")
    if out.is_file():
        return out
    tmp = out.with_suffix(".tmp.mp4")
    cmd = [
        ffmpeg_exe(),
        "-v",
        "error",
        "-y",
        "-ss",
        f"{st:.3f}",
        "-i",
        str(video),
        "-t",
        f"{dur:.3f}",
        "-vf",
        f"scale=-2:'min({height},ih)'",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-movflags",
        "+faststart",
        str(tmp),
    ]
    proc = subprocess.run(cmd, capture_output=True, timeout=300)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise C2FError(
            f"could not cut {Path(video).name} at {start:.1f}-{end:.1f} s: "
            f"{proc.stderr.decode(errors='replace')[-300:]}"
        )
    tmp.replace(out)
    return out


def thumbnail(video: str | Path, at: float, cache: Path, height: int = 160) -> Path:
    out = _cached(cache, f"{video}|thumb|{at:.3f}|{height}", ".jpg")
    if out.is_file():
        return out
    cmd = [
        ffmpeg_exe(),
        "-v",
        "error",
        "-y",
        "-ss",
        f"{max(0.0, at):.3f}",
        "-i",
        str(video),
        "-frames:v",
        "1",
        "-vf",
        f"scale=-2:{height}",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, timeout=120)
    if proc.returncode != 0 or not out.is_file():
        raise C2FError(f"could not take a thumbnail of {Path(video).name} at {at:.1f} s")
    return out

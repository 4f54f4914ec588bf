"""Audio for speech recognition: the first audio stream of any media file as 16 kHz mono float32,
decoded by ffmpeg and streamed in fixed-size chunks, so memory stays flat for hours of audio.

A file without an audio stream has no samples (empty iterator, zero-length array), not an error.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from c2f.errors import CorruptVideoError, NotAFileError, NotAVideoError
from c2f.video.pipe import FfmpegPipe, duration_limit
from c2f.video.tools import ffmpeg_exe, ffprobe_complaint, ffprobe_exe

SAMPLE_RATE = 16_000  # Whisper's input rate
_BYTES_PER_SAMPLE = 4  # float32


@dataclass(frozen=True)
class AudioInfo:
    path: str
    has_audio: bool
    duration: float  # seconds of the first audio stream (0.0 without one)


def probe_audio(path: str | Path) -> AudioInfo:
    """Whether `path` has an audio stream, and how long it is (ffprobe); typed errors for bad files."""
    p = Path(path)
    if not p.is_file():
        raise NotAFileError(str(p), "file not found or not a regular file")
    cmd = [ffprobe_exe(), "-v", "error", "-show_streams", "-show_format", "-of", "json", str(p)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        why = ffprobe_complaint(proc.stderr, p)
        raise NotAVideoError(str(p), f"not a media file ffmpeg can read ({why})")
    meta = json.loads(proc.stdout or "{}")
    audio = [s for s in meta.get("streams", []) if s.get("codec_type") == "audio"]
    if not audio:
        return AudioInfo(str(p), False, 0.0)
    duration = audio[0].get("duration") or meta.get("format", {}).get("duration") or 0.0
    return AudioInfo(str(p), True, float(duration))


def iter_audio(path: str | Path, chunk_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """float32 mono chunks (n,) at SAMPLE_RATE, each `chunk_seconds` long except the last; nothing
    for a file without audio. Only one chunk (plus ffmpeg's pipe buffer) is in memory at a time."""
    info = probe_audio(path)
    if not info.has_audio:
        return
    chunk_bytes = max(1, round(chunk_seconds * SAMPLE_RATE)) * _BYTES_PER_SAMPLE
    cmd = [
        ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
        "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    # more samples than the probed duration allows: refused (a duration that lies, timestamps that jump)
    limit = duration_limit(info.duration, SAMPLE_RATE, _BYTES_PER_SAMPLE, f"samples at {SAMPLE_RATE // 1000} kHz")
    with FfmpegPipe(cmd, str(path), limit=limit) as pipe:
        while True:
            data = pipe.read(chunk_bytes)
            usable = len(data) - len(data) % _BYTES_PER_SAMPLE
            if usable:
                yield np.frombuffer(data, dtype=np.float32, count=usable // _BYTES_PER_SAMPLE)
            if len(data) < chunk_bytes:
                break
        if pipe.wait() != 0:
            why = pipe.last_line() or "ffmpeg failed"
            raise CorruptVideoError(str(path), f"the audio could not be decoded ({why})")


def read_audio(path: str | Path) -> np.ndarray:
    """The whole audio as one float32 (n,) array (empty without audio); for short files."""
    chunks = list(iter_audio(path))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)

"""Test videos made on the fly with ffmpeg: good ones in several containers/codecs, and bad ones.

`make_video` renders coloured segments (so tests can plant visual events at known times) or
ffmpeg's moving test pattern; every knob a real user's file may differ in is a parameter.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from c2f.video.tools import ffmpeg_exe

# container extension -> (video codec, extra args)
CODECS: dict[str, tuple[str, list[str]]] = {
    "mp4": ("libx264", ["-pix_fmt", "yuv420p", "-preset", "ultrafast"]),
    "mkv": ("libx264", ["-pix_fmt", "yuv420p", "-preset", "ultrafast"]),
    "mov": ("libx264", ["-pix_fmt", "yuv420p", "-preset", "ultrafast"]),
    "webm": (
        "libvpx-vp9",
        ["-pix_fmt", "yuv420p", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k"],
    ),
    "avi": ("mpeg4", ["-q:v", "5"]),  # MPEG-4 part 2
}


def _run(args: list[str]) -> None:
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], capture_output=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.decode(errors='replace')[-2000:]}")


def make_video(
    path: str | Path,
    seconds: float = 3.0,
    size: tuple[int, int] = (160, 120),
    fps: float = 25,
    segments: list[tuple[str, float]] | None = None,
    audio: bool = False,
    rotate: int | None = None,
    vcodec: str | None = None,
) -> Path:
    """Render a video. `segments`: [(ffmpeg colour, seconds)] shown in order (overrides `seconds`);
    otherwise ffmpeg's moving `testsrc2` pattern. `rotate`: display-matrix rotation metadata (90/180/270)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lstrip(".")
    codec, extra = CODECS[ext]
    codec = vcodec or codec
    w, h = size
    args: list[str] = []
    if segments:
        for colour, dur in segments:
            args += ["-f", "lavfi", "-i", f"color=c={colour}:s={w}x{h}:r={fps}:d={dur}"]
        n = len(segments)
        chain = "".join(f"[{i}:v]" for i in range(n)) + f"concat=n={n}:v=1:a=0[v]"
        total = sum(d for _, d in segments)
        filt = ["-filter_complex", chain, "-map", "[v]"]
    else:
        args += ["-f", "lavfi", "-i", f"testsrc2=s={w}x{h}:r={fps}:d={seconds}"]
        total = seconds
        filt = ["-map", "0:v"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={total}"]
        filt += [
            "-map",
            f"{len(segments) if segments else 1}:a",
            "-c:a",
            "aac" if ext != "webm" else "libopus",
        ]
    out = [*args, *filt, "-c:v", codec, *extra, "-t", str(total), str(path)]
    _run(out)
    if rotate is not None:
        rotated = path.with_name(path.stem + ".rot" + path.suffix)
        _run(["-i", str(path), "-c", "copy", "-metadata:s:v:0", f"rotate={rotate}", str(rotated)])
        rotated.replace(path)
    return path


def make_vfr_video(path: str | Path, seconds: float = 4.0, size: tuple[int, int] = (160, 120)) -> Path:
    """Variable frame rate: frames dropped irregularly, timestamps kept (mp4, -fps_mode vfr)."""
    path = Path(path)
    _run(
        [
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=s={size[0]}x{size[1]}:r=30:d={seconds}",
            "-vf",
            "select='not(mod(n\\,3))+between(t\\,1\\,2)',setpts=PTS",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-preset",
            "ultrafast",
            str(path),
        ]
    )
    return path


def make_audio_only(path: str | Path, seconds: float = 2.0) -> Path:
    path = Path(path)
    _run(["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", str(path)])
    return path


def make_text_file_as_video(path: str | Path) -> Path:
    path = Path(path)
    path.write_text("this is not a video, just text renamed to look like one\n" * 20)
    return path


def make_truncated(src: str | Path, path: str | Path, keep_fraction: float = 0.3) -> Path:
    data = Path(src).read_bytes()
    path = Path(path)
    path.write_bytes(data[: max(1, int(len(data) * keep_fraction))])
    return path


def make_zero_length(path: str | Path) -> Path:
    path = Path(path)
    path.write_bytes(b"")
    return path


def write_srt(path: str | Path, cues: list[tuple[float, float, str]]) -> Path:
    def ts(t: float) -> str:
        ms = round(t * 1000)
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    path = Path(path)
    blocks = [f"{i}\n{ts(s)} --> {ts(e)}\n{text}\n" for i, (s, e, text) in enumerate(cues, 1)]
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path

"""Where the ffmpeg and ffprobe executables are, and ffmpeg run to write one file.

ffmpeg: the system one, else the binary shipped in the `imageio-ffmpeg` wheel.
ffprobe: the system one (Debian/Ubuntu `apt-get install ffmpeg`; on a Space, `packages.txt`).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from c2f.errors import C2FError


@functools.cache
def ffmpeg_exe() -> str:
    override = os.environ.get("C2F_FFMPEG")
    if override:
        return override
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # the wheel is missing or has no binary for this platform
        raise C2FError(
            "ffmpeg was not found: install it (apt-get install ffmpeg) or pip install imageio-ffmpeg"
        ) from exc


@functools.cache
def ffprobe_exe() -> str:
    override = os.environ.get("C2F_FFPROBE")
    if override:
        return override
    found = shutil.which("ffprobe")
    if found:
        return found
    raise C2FError(
        "ffprobe was not found: install ffmpeg (apt-get install ffmpeg; on a Space, add it to packages.txt)"
    )


def ffprobe_complaint(log: str, path: str | Path) -> str:
    """The reason in ffprobe's log (its last line), without the file's path that it begins with:
    the VideoError carrying it names the file already."""
    lines = log.strip().splitlines()
    return lines[-1].strip().removeprefix(f"{path}: ") if lines else "ffprobe could not read it"


def ffmpeg_to_file(args: list[str], out: str | Path, what: str, timeout: float) -> Path:
    """`ffmpeg -v error -y ARGS OUT` within `timeout` seconds (its log is read whole when it ends:
    nothing streams, so no pipe can fill up); C2FError "could not make WHAT: <ffmpeg's last line>"
    when it fails, writes nothing or runs out of time. Readers of ffmpeg's output as it comes use
    c2f.video.pipe instead."""
    try:
        proc = subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-y", *args, str(out)], capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise C2FError(f"could not make {what}: ffmpeg took more than {timeout:.0f} s") from None
    if proc.returncode != 0 or not Path(out).is_file() or Path(out).stat().st_size == 0:
        why = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["it wrote nothing"]
        raise C2FError(f"could not make {what}: {why[0][-200:]}")
    return Path(out)


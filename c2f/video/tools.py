"""Where the ffmpeg and ffprobe executables are.

ffmpeg: the system one, else the binary shipped in the `imageio-ffmpeg` wheel.
ffprobe: the system one (Debian/Ubuntu `apt-get install ffmpeg`; on a Space, `packages.txt`).
"""

from __future__ import annotations

import functools
import os
import shutil

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

"""What a visitor's browser may fetch: a playable copy of each indexed video and its thumbnail.

Made once, right after a video is indexed, into a media folder that holds nothing else (never the
catalog, the indexes or the features). Every file is written under a unique temporary name and
renamed into place, so two visitors asking for the same file never see half of it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from c2f.errors import C2FError
from c2f.video.tools import ffmpeg_exe

# Containers every browser plays as they are (H.264/VP9 inside); anything else is converted once.
BROWSER_CONTAINERS = {".mp4", ".m4v", ".webm"}


def _ffmpeg_to(path: Path, args: list[str], what: str, timeout: float) -> Path:
    """Run ffmpeg into a unique temporary file next to `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        proc = subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-y", *args, tmp], capture_output=True, timeout=timeout
        )
        if proc.returncode != 0 or os.path.getsize(tmp) == 0:
            raise C2FError(f"could not make {what}: {proc.stderr.decode(errors='replace')[-200:].strip()}")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def playable_copy(video: Path, out_dir: Path, stem: str, height: int = 480) -> Path:
    """The video as the browser will play it: a hard link (or copy) of a browser container,
    else a one-time H.264 conversion. Returns the existing file when it is already there."""
    ext = video.suffix.lower()
    out = out_dir / f"{stem}{ext if ext in BROWSER_CONTAINERS else '.mp4'}"
    if out.is_file():
        return out
    if ext in BROWSER_CONTAINERS:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{stem}.", suffix=ext)
        os.close(fd)
        os.unlink(tmp)
        try:
            os.link(video, tmp)
        except OSError:  # another file system: a copy
            shutil.copyfile(video, tmp)
        os.replace(tmp, out)
        return out
    args = ["-i", str(video), "-vf", f"scale=-2:'min({height},ih)'", "-c:v", "libx264", "-preset"]
    args += ["veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart"]
    return _ffmpeg_to(out, args, f"a playable copy of {video.name}", timeout=1800)


def thumbnail(video: Path, at: float, out: Path, height: int = 160) -> Path:
    """One JPEG frame of `video` at `at` seconds (made once; the existing file is kept)."""
    if out.is_file():
        return out
    args = ["-ss", f"{max(0.0, at):.3f}", "-i", str(video), "-frames:v", "1", "-vf", f"scale=-2:{height}"]
    return _ffmpeg_to(out, [*args, "-f", "image2"], f"a thumbnail of {video.name}", timeout=120)


def folder_bytes(path: Path) -> int:
    """Bytes of every file under `path` (hard links counted once per folder walk)."""
    seen, total = set(), 0
    for f in path.rglob("*") if path.is_dir() else []:
        try:
            st = f.stat()
        except OSError:
            continue
        if f.is_file() and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total

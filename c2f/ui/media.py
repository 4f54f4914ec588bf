"""What a visitor's browser may fetch: a playable copy of each indexed video and its thumbnail.

Made once, right after a video is indexed, into a media folder that holds nothing else (never the
catalog, the indexes or the features). Every file is written under a unique temporary name and
renamed into place, so two visitors asking for the same file never see half of it.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from c2f.errors import C2FError
from c2f.shared_files import atomic_path
from c2f.video.tools import ffmpeg_to_file

if TYPE_CHECKING:
    from c2f.library import Library

# Containers every browser plays as they are (H.264/VP9 inside); anything else is converted once.
BROWSER_CONTAINERS = {".mp4", ".m4v", ".webm"}


def _ffmpeg_to(path: Path, args: list[str], what: str, timeout: float) -> Path:
    """Run ffmpeg into a unique temporary file next to `path`, then rename it into place."""
    with atomic_path(path) as tmp:
        ffmpeg_to_file(args, tmp, what, timeout)
    return path


def playable_copy(video: Path, out_dir: Path, stem: str, height: int = 480) -> Path:
    """The video as the browser will play it: a hard link (or copy) of a browser container,
    else a one-time H.264 conversion. Returns the existing file when it is already there."""
    ext = video.suffix.lower()
    out = out_dir / f"{stem}{ext if ext in BROWSER_CONTAINERS else '.mp4'}"
    if out.is_file():
        return out
    if ext in BROWSER_CONTAINERS:
        with atomic_path(out) as tmp:
            tmp.unlink()  # (a link needs a free name)
            try:
                os.link(video, tmp)
            except OSError:  # another file system: a copy
                shutil.copyfile(video, tmp)
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


class MediaFiles:
    """The playable copy and thumbnail of each indexed video, made once per media folder; kept in
    memory once made, so a search costs one stat per video instead of catalog reads."""

    def __init__(self) -> None:
        self._made: dict[tuple[Path, str], tuple[Path, Path | None]] = {}
        self._lock = threading.Lock()

    def of(self, library: Library, folder: Path, video_id: str) -> tuple[Path, Path | None]:
        """(playable video, thumbnail or None) of one indexed video of `library`, made in `folder`."""
        with self._lock:
            made = self._made.get((folder, video_id))
        if made is not None and made[0].is_file():  # (a removed video takes its media with it)
            return made
        rec = library.get(video_id)
        video = playable_copy(library.video_path(video_id), folder, video_id)
        try:
            thumb = thumbnail(video, 0.3 * (rec.duration or 0.0), folder / f"{video_id}.jpg")
        except C2FError:
            thumb = None
        with self._lock:
            self._made[(folder, video_id)] = (video, thumb)
        return video, thumb

    def make_all(self, library: Library, folder: Path) -> None:
        """Media of every indexed video of `library` that has none yet."""
        for rec in library.list():
            if rec.status == "indexed":
                self.of(library, folder, rec.video_id)

    def remove(self, folder: Path, video_id: str) -> None:
        """The media of a removed video."""
        with self._lock:
            self._made.pop((folder, video_id), None)
        for f in folder.glob(f"{video_id}.*"):
            f.unlink(missing_ok=True)

    def forget(self, folder: Path) -> None:
        """Drop what is known of a media folder that is going away."""
        with self._lock:
            for key in [k for k in self._made if k[0].is_relative_to(folder)]:
                del self._made[key]

"""What an upload may store: each file checked on its own (type, size, length; a subtitle file has
its own size cap and needs its video in the same upload), then against the visitor's quotas
(videos, minutes, disk: library, media and exports together) and the server's caps (videos and
disk of everybody together). A file that does not fit is refused alone, with its reason; when a
server cap refuses everything, the upload gets one message: the demo is full.

Admitted uploads hold a reservation until their job ends, so two uploads running at once cannot
both take the last room.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from c2f.errors import VideoError
from c2f.ui.config import AppConfig
from c2f.ui.media import folder_bytes
from c2f.ui.visitors import DemoFullError
from c2f.video import probe_video
from c2f.video.files import VIDEO_EXTENSIONS

SUBTITLE_EXTENSIONS = {".srt", ".vtt"}
UPLOAD_EXTENSIONS = sorted(VIDEO_EXTENSIONS | SUBTITLE_EXTENSIONS)
MB = 1024 * 1024
GONE = "the uploaded file is no longer there (indexed uploads are not kept): upload it again"


@dataclass
class Usage:
    videos: int = 0
    seconds: float = 0.0
    bytes: int = 0


@dataclass
class UploadPlan:
    videos: list[Path] = field(default_factory=list)  # admitted, in upload order
    subtitles: dict[str, Path] = field(default_factory=dict)  # video path -> its subtitle file
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file name, plain-words reason)
    cost: Usage = field(default_factory=Usage)  # what the admitted files will take


class Quotas:
    def __init__(self, config: AppConfig, export_root: Path) -> None:
        self.config = config
        self.export_root = export_root
        self._reserved = Usage()
        self._lock = threading.Lock()

    # --- one file ------------------------------------------------------------------------------
    def check_video(self, f: Path) -> tuple[float, str | None]:
        """(duration, None) for an acceptable video file, else (0, plain-words reason)."""
        if not f.is_file():
            return 0.0, GONE
        if f.suffix.lower() not in VIDEO_EXTENSIONS:
            return 0.0, f"not a video file type C2F reads ({', '.join(sorted(VIDEO_EXTENSIONS))})"
        if f.stat().st_size > self.config.max_upload_mb * MB:
            return 0.0, f"larger than the {self.config.max_upload_mb} MB limit of this server"
        try:
            info = probe_video(f)
        except VideoError as exc:
            return 0.0, exc.reason
        if info.duration > self.config.max_video_seconds:
            limit = self.config.max_video_seconds
            return 0.0, f"{info.duration:.0f} s long: this server accepts videos up to {limit:.0f} s"
        return info.duration, None

    def check_subtitle(self, f: Path, video_stems: set[str]) -> str | None:
        """None for an acceptable subtitle file, else the plain-words reason."""
        if not f.is_file():
            return GONE
        limit = self.config.max_subtitle_kb
        if f.stat().st_size > limit * 1024:
            return f"subtitle file larger than the {limit:.0f} KB limit of this server"
        if f.stem not in video_stems:
            return f"no video named {f.stem}.* in this upload: a subtitle file goes with its video"
        return None

    # --- usage ---------------------------------------------------------------------------------
    def server_usage(self) -> Usage:
        """Videos stored and bytes used by every collection and export, reservations included."""
        root = self.config.library_root
        stored = [*root.glob("*/videos/*"), *root.glob("visitors/*/*/videos/*")]
        videos = sum(1 for p in stored if not p.name.startswith("."))
        used = folder_bytes(root) + folder_bytes(self.export_root)
        return Usage(videos + self._reserved.videos, 0.0, used + self._reserved.bytes)

    @staticmethod
    def visitor_usage(records: list, folders: list[Path]) -> Usage:
        """One visitor: their videos (catalog records) and the bytes of their folders."""
        return Usage(
            len(records),
            sum(r.duration or 0.0 for r in records),
            sum(folder_bytes(f) for f in folders),
        )

    # --- an upload -----------------------------------------------------------------------------
    @contextmanager
    def admit(self, files: list[Path], visitor: Usage | None) -> Iterator[UploadPlan]:
        """Which of `files` may be stored, reserved while the block stores them (by then the stored
        files count for themselves). `visitor`: the uploader's usage (None: a local run, no
        per-visitor quota). Raises DemoFullError when a server cap refuses every video."""
        plan = self._plan(files, visitor)
        try:
            yield plan
        finally:
            with self._lock:
                self._reserved = Usage(
                    self._reserved.videos - plan.cost.videos, 0.0, self._reserved.bytes - plan.cost.bytes
                )

    def _plan(self, files: list[Path], visitor: Usage | None) -> UploadPlan:
        plan = UploadPlan()
        stems = {f.stem for f in files if f.suffix.lower() not in SUBTITLE_EXTENSIONS}
        subs = {}
        for f in files:
            if f.suffix.lower() in SUBTITLE_EXTENSIONS:
                why = self.check_subtitle(f, stems)
                if why:
                    plan.failed.append((f.name, why))
                else:
                    subs[f.stem] = f
        full = None  # why the server is full, when it refused a video for that
        with self._lock:
            server = self.server_usage()
            for f in files:
                if f.suffix.lower() in SUBTITLE_EXTENSIONS:
                    continue
                duration, why = self.check_video(f)
                sub = subs.get(f.stem)
                # the stored copy, its playable link or copy, and the subtitles
                size = 2 * f.stat().st_size + (sub.stat().st_size if sub else 0) if f.is_file() else 0
                if why is None and visitor is not None:
                    why = self._over_visitor_quota(visitor, plan.cost, duration, size)
                if why is None:
                    full = self._over_server_cap(server, plan.cost, size)
                    why = str(DemoFullError(full)) if full else None
                if why:
                    plan.failed.append((f.name, why))
                    continue
                plan.videos.append(f)
                plan.cost = Usage(plan.cost.videos + 1, plan.cost.seconds + duration, plan.cost.bytes + size)
                if sub is not None:
                    plan.subtitles[str(f)] = sub
            if full and not plan.videos:
                raise DemoFullError(full)
            self._reserved = Usage(
                self._reserved.videos + plan.cost.videos, 0.0, self._reserved.bytes + plan.cost.bytes
            )
        return plan

    def _over_visitor_quota(self, used: Usage, planned: Usage, duration: float, size: int) -> str | None:
        c = self.config
        if used.videos + planned.videos + 1 > c.visitor_max_videos:
            return "over the quota of videos in your library: remove one first"
        if used.seconds + planned.seconds + duration > c.visitor_max_minutes * 60:
            return f"over the quota of {c.visitor_max_minutes:.0f} minutes of video per visitor"
        if used.bytes + planned.bytes + size > c.visitor_max_disk_mb * MB:
            return f"over the quota of {c.visitor_max_disk_mb:.0f} MB of disk per visitor"
        return None

    def _over_server_cap(self, server: Usage, planned: Usage, size: int) -> str | None:
        c = self.config
        if server.videos + planned.videos + 1 > c.max_videos:
            return f"{c.max_videos} videos are stored here"
        if server.bytes + planned.bytes + size > c.max_disk_gb * 1024 * MB:
            return f"{c.max_disk_gb:g} GB of disk are used"
        return None


__all__ = ["SUBTITLE_EXTENSIONS", "UPLOAD_EXTENSIONS", "Quotas", "UploadPlan", "Usage"]

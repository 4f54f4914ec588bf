"""What the browser demo does, as plain Python the UI (app.py) calls: no Gradio here.

One library folder per feature preset under the app's root (a backend reads the features of its
preset), backends loaded once per process and shared read-only, limits that protect the host.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from c2f.errors import C2FError, LibraryError, VideoError
from c2f.library import Library
from c2f.search import list_checkpoints, load_backend
from c2f.search.types import Moment, SearchResult
from c2f.ui.media import cut_span, thumbnail
from c2f.video import probe_video
from c2f.video.files import VIDEO_EXTENSIONS

SUBTITLE_EXTENSIONS = {".srt", ".vtt"}


@dataclass
class AppConfig:
    library_root: Path = field(default_factory=lambda: Path(os.environ.get("C2F_LIBRARY", "c2f_library")))
    mode: str = os.environ.get("C2F_MODE", "zero-shot")  # "zero-shot", "tiny" or "learned:<checkpoint>"
    max_upload_mb: int = int(os.environ.get("C2F_MAX_UPLOAD_MB", "500"))
    max_video_seconds: float = float(os.environ.get("C2F_MAX_VIDEO_SECONDS", "3600"))
    max_videos: int = int(os.environ.get("C2F_MAX_VIDEOS", "1000"))
    device: str | None = os.environ.get("C2F_DEVICE")


@dataclass
class IndexOutcome:
    added: list[str]
    duplicates: list[str]
    failed: list[tuple[str, str]]  # (file name, plain-words reason)

    def summary(self) -> str:
        parts = [f"{len(self.added)} video(s) added"]
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} already in the library")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return ", ".join(parts)


class AppService:
    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self._backends: dict[str, object] = {}
        self._libraries: dict[str, Library] = {}
        self._lock = threading.Lock()

    # --- modes and backends ------------------------------------------------------------------------
    def modes(self) -> list[str]:
        return ["zero-shot", "tiny", *(f"learned:{name}" for name in list_checkpoints())]

    def backend(self, mode: str):
        with self._lock:
            if mode not in self._backends:
                kind, _, ckpt = mode.partition(":")
                self._backends[mode] = load_backend(kind, ckpt or None, self.config.device)
            return self._backends[mode]

    def mode_banner(self, mode: str) -> tuple[str, bool]:
        """(markdown, usable): what the active mode is, or exactly why it cannot run."""
        try:
            b = self.backend(mode)
        except C2FError as exc:
            return f"**Mode `{mode}` is not available.** {exc}".replace("\n", "  \n"), False
        if b.is_tiny:
            return f"### ⚠️ TINY TEST MODE: random weights, results are meaningless\n{b.description}", True
        return f"**Mode:** {b.name}. {b.description}", True

    def library(self, mode: str) -> Library:
        b = self.backend(mode)
        preset = b.feature_settings.preset
        with self._lock:
            if preset not in self._libraries:
                self._libraries[preset] = Library(
                    self.config.library_root / preset, settings=b.feature_settings, device=self.config.device
                )
            return self._libraries[preset]

    # --- library -----------------------------------------------------------------------------------
    def index(
        self, mode: str, paths: list[str | Path], progress: Callable[[str, float, float], None] | None = None
    ) -> IndexOutcome:
        """Uploaded files: videos are checked against the limits, subtitles paired by file stem."""
        if not paths:
            raise C2FError("no file was given: upload one or more videos first")
        lib = self.library(mode)
        files = [Path(p) for p in paths]
        subs = {f.stem: f for f in files if f.suffix.lower() in SUBTITLE_EXTENSIONS}
        videos, failed = [], []
        for f in files:
            ext = f.suffix.lower()
            if ext in SUBTITLE_EXTENSIONS:
                continue
            if ext not in VIDEO_EXTENSIONS:
                failed.append(
                    (f.name, f"not a video file type C2F reads ({', '.join(sorted(VIDEO_EXTENSIONS))})")
                )
                continue
            if f.stat().st_size > self.config.max_upload_mb * 1024 * 1024:
                failed.append(
                    (f.name, f"larger than the {self.config.max_upload_mb} MB limit of this server")
                )
                continue
            try:
                info = probe_video(f)
            except VideoError as exc:
                failed.append((f.name, exc.reason))
                continue
            if info.duration > self.config.max_video_seconds:
                failed.append(
                    (
                        f.name,
                        f"{info.duration:.0f} s long: this server accepts videos up to "
                        f"{self.config.max_video_seconds:.0f} s",
                    )
                )
                continue
            videos.append(f)
        if len(lib.list()) + len(videos) > self.config.max_videos:
            raise LibraryError(f"this server keeps at most {self.config.max_videos} videos in a library")
        report = (
            lib.add(
                videos,
                copy=True,
                subtitles={str(v): subs[v.stem] for v in videos if v.stem in subs},
                progress=progress,
            )
            if videos
            else None
        )
        if report is None:
            return IndexOutcome([], [], failed)
        return IndexOutcome(
            [r.name for r in report.added],
            [n for n, _ in report.duplicates],
            failed + [(n, why) for n, why in report.failed],
        )

    def table(self, mode: str) -> list[list]:
        rows = []
        for r in self.library(mode).list():
            rows.append(
                [
                    r.video_id,
                    r.name,
                    round(r.duration or 0.0, 1),
                    r.num_clips or 0,
                    r.status,
                    "yes" if r.has_subtitles else "",
                    r.error or "",
                ]
            )
        return rows

    def remove(self, mode: str, video_id: str) -> str:
        if not video_id:
            raise C2FError("pick a video to remove")
        rec = self.library(mode).remove(video_id)
        return f"removed {rec.name}"

    # --- search ------------------------------------------------------------------------------------
    def search(self, mode: str, query: str, top_k: int = 5, moments: int = 3) -> SearchResult:
        return self.library(mode).search(
            query, self.backend(mode), top_k_videos=int(top_k), moments_per_video=int(moments)
        )

    def cache_dir(self, mode: str) -> Path:
        return self.library(mode).root / "cache"

    def moment_clip(self, mode: str, moment: Moment) -> Path:
        lib = self.library(mode)
        return cut_span(lib.video_path(moment.video_id), moment.start, moment.end, self.cache_dir(mode))

    def thumbnails(self, mode: str, result: SearchResult) -> list[tuple[str, str]]:
        out = []
        for rank, v in enumerate(result.videos, 1):
            at = v.moments[0].start + 0.5 * (v.moments[0].end - v.moments[0].start) if v.moments else 0.0
            try:
                out.append(
                    (
                        str(thumbnail(v.path, at, self.cache_dir(mode))),
                        f"{rank}. {v.name} ({v.video_score:.3f})",
                    )
                )
            except C2FError:
                continue
        return out

    def evaluate(self, mode: str, annotations: str | Path, top_k: int = 10, progress=None):
        from c2f.analysis import evaluate_library

        return evaluate_library(
            self.library(mode), self.backend(mode), annotations, top_k_videos=int(top_k), progress=progress
        )

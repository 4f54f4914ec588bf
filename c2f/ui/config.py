"""The demo's settings: where its files live and every limit it enforces, each from a `C2F_*`
environment variable (read when the config is made) with the default in parentheses below.

A public deployment (`multi_user`) bounds what any visitor may cost: per-visitor quotas, global
caps past which the demo says it is full, a rate of new visitors, the evaluation's rows and time,
and the indexing jobs that run at once.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from c2f.environment import env_float, env_int


def _env(name: str, default: float) -> float:
    return env_float(name, default, minimum=0)


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    return env_int(name, default, minimum=minimum)


@dataclass
class AppConfig:
    library_root: Path = field(default_factory=lambda: Path(os.environ.get("C2F_LIBRARY", "c2f_library")))
    mode: str = field(default_factory=lambda: os.environ.get("C2F_MODE", "zero-shot"))
    device: str | None = field(default_factory=lambda: os.environ.get("C2F_DEVICE"))
    multi_user: bool = False
    # any upload
    max_upload_mb: int = field(default_factory=lambda: _env_int("C2F_MAX_UPLOAD_MB", 500))
    max_video_seconds: float = field(default_factory=lambda: _env("C2F_MAX_VIDEO_SECONDS", 3600))
    max_subtitle_kb: float = field(default_factory=lambda: _env("C2F_MAX_SUBTITLE_KB", 1024))
    # the whole server (a local run: its one library; multi-user: every visitor together)
    max_videos: int = field(default_factory=lambda: _env_int("C2F_MAX_VIDEOS", 1000))
    max_disk_gb: float = field(default_factory=lambda: _env("C2F_MAX_DISK_GB", 20))
    max_visitors: int = field(default_factory=lambda: _env_int("C2F_MAX_VISITORS", 100))
    new_visitors_per_minute: int = field(default_factory=lambda: _env_int("C2F_NEW_VISITORS_PER_MINUTE", 20))
    # one visitor's private collection (multi-user only)
    visitor_max_videos: int = field(default_factory=lambda: _env_int("C2F_VISITOR_MAX_VIDEOS", 10))
    visitor_max_minutes: float = field(default_factory=lambda: _env("C2F_VISITOR_MAX_MINUTES", 20))
    visitor_max_disk_mb: float = field(default_factory=lambda: _env("C2F_VISITOR_MAX_DISK_MB", 500))
    idle_minutes: float = field(default_factory=lambda: _env("C2F_IDLE_MINUTES", 120))
    sweep_seconds: float = field(default_factory=lambda: _env("C2F_SWEEP_SECONDS", 60))
    # evaluation (multi-user only: a local run evaluates whatever it is given)
    eval_max_rows: int = field(default_factory=lambda: _env_int("C2F_EVAL_MAX_ROWS", 5000))
    eval_max_seconds: float = field(default_factory=lambda: _env("C2F_EVAL_MAX_SECONDS", 600))
    max_annotation_mb: float = field(default_factory=lambda: _env("C2F_MAX_ANNOTATION_MB", 20))
    # exported clips: seconds of video one export may cut (multi-user only)
    export_max_seconds: float = field(default_factory=lambda: _env("C2F_EXPORT_MAX_SECONDS", 600))
    # heavy jobs at once: indexing, evaluation, cutting clips; and how many more may wait for a turn
    index_slots: int = field(default_factory=lambda: _env_int("C2F_INDEX_SLOTS", 2, minimum=1))
    eval_slots: int = field(default_factory=lambda: _env_int("C2F_EVAL_SLOTS", 1, minimum=1))
    export_slots: int = field(default_factory=lambda: _env_int("C2F_EXPORT_SLOTS", 1, minimum=1))
    jobs_waiting: int = field(default_factory=lambda: _env_int("C2F_JOBS_WAITING", 8))
    # signs visitor ids; None: C2F_SECRET, else a key made once and kept in the library root
    secret: str | None = None

    @property
    def media_root(self) -> Path:
        """The only folder whose files the browser may fetch."""
        return (self.library_root / "media").resolve()

    @property
    def temp_root(self) -> Path:
        """The app's temporary files, under the system's temporary folder (one per library root on
        a machine): never under the library root, never served from there."""
        tag = hashlib.sha1(str(self.library_root.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"c2f-{tag}"

    @property
    def export_root(self) -> Path:
        """Visitors' downloads (c2f.ui.exports)."""
        return self.temp_root / "exports"

    @property
    def examples_cache_root(self) -> Path:
        """Gradio's cache of the example queries' results, a folder per mode, showcase and version
        (c2f.ui.example_cache)."""
        return self.temp_root / "examples"

    @property
    def gradio_cache(self) -> Path:
        """Gradio's cache (uploads, copies of downloads) when the app owns it (c2f.ui.launch)."""
        return self.temp_root / "gradio"


__all__ = ["AppConfig"]

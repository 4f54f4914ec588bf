"""What the browser demo does, as plain Python the UI (app.py) calls: no Gradio here.

A *collection* is a library plus the media folder its visitor may fetch (playable copies and
thumbnails, made once when a video is indexed). A local run has one collection per feature preset.
With `multi_user`, every visitor has a private collection (quotas, removed when idle) and everyone
searches a read-only *showcase* of the bundled examples, indexed once at start-up. Backends are
loaded once per process, each mode behind its own lock, and a failed load is remembered.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from c2f.errors import C2FError, LibraryError, VideoError
from c2f.library import Library
from c2f.search import list_checkpoints, load_backend
from c2f.search.types import SearchResult
from c2f.shared_files import atomic_write_bytes
from c2f.ui.examples import example_videos
from c2f.ui.media import folder_bytes, playable_copy, thumbnail
from c2f.ui.visitors import IdleSweeper, VisitorKeys
from c2f.video import probe_video
from c2f.video.files import VIDEO_EXTENSIONS

SUBTITLE_EXTENSIONS = {".srt", ".vtt"}
UPLOAD_EXTENSIONS = sorted(VIDEO_EXTENSIONS | SUBTITLE_EXTENSIONS)
SHOWCASE = "showcase"  # the `who` of the shared read-only collection
SOURCES = ("auto", "my videos", "examples")  # what a search looks in


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass
class AppConfig:
    library_root: Path = field(default_factory=lambda: Path(os.environ.get("C2F_LIBRARY", "c2f_library")))
    mode: str = os.environ.get("C2F_MODE", "zero-shot")  # "zero-shot", "tiny" or "learned:<checkpoint>"
    max_upload_mb: int = int(os.environ.get("C2F_MAX_UPLOAD_MB", "500"))
    max_video_seconds: float = _env_float("C2F_MAX_VIDEO_SECONDS", 3600)
    max_videos: int = int(os.environ.get("C2F_MAX_VIDEOS", "1000"))
    device: str | None = os.environ.get("C2F_DEVICE")
    multi_user: bool = False
    # quotas of one visitor's private collection (multi-user only)
    visitor_max_videos: int = int(os.environ.get("C2F_VISITOR_MAX_VIDEOS", "10"))
    visitor_max_minutes: float = _env_float("C2F_VISITOR_MAX_MINUTES", 20)
    visitor_max_disk_mb: float = _env_float("C2F_VISITOR_MAX_DISK_MB", 500)
    idle_minutes: float = _env_float("C2F_IDLE_MINUTES", 120)  # a silent visitor's files are then removed
    secret: str | None = None  # signs visitor ids; random per process unless C2F_SECRET is set


@dataclass
class Collection:
    library: Library
    media: Path  # only playable videos and thumbnails: the one folder served to the browser
    read_only: bool = False


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
        self.keys = VisitorKeys(config.secret)
        self.sweeper = IdleSweeper(config.idle_minutes * 60)
        self._backends: dict[str, object] = {}
        self._backend_errors: dict[str, C2FError] = {}
        self._mode_locks: dict[str, threading.Lock] = {}
        self._collections: dict[tuple[str, str], Collection] = {}
        self._lock = threading.Lock()  # guards the dicts above only; never held while working
        self._showcase_lock = threading.Lock()
        self._transcribers: dict[str, object] = {}  # Whisper per model, loaded on first "transcribe"
        # (media folder, video id) -> its playable copy and thumbnail, once made: a search then
        # costs one stat per video instead of catalog reads
        self._media_made: dict[tuple[Path, str], tuple[Path, Path | None]] = {}

    @property
    def media_root(self) -> Path:
        """The only folder whose files the browser may fetch."""
        return (self.config.library_root / "media").resolve()

    # --- modes and backends ------------------------------------------------------------------------
    def modes(self) -> list[str]:
        return ["zero-shot", "tiny", *(f"learned:{name}" for name in list_checkpoints())]

    def backend(self, mode: str):
        """The backend of `mode`, loaded once per process; other modes never wait for it, and a
        failed load is remembered so the next caller hears why at once."""
        with self._lock:
            if mode in self._backends:
                return self._backends[mode]
            if mode in self._backend_errors:
                raise self._backend_errors[mode]
            mode_lock = self._mode_locks.setdefault(mode, threading.Lock())
        with mode_lock:
            with self._lock:
                if mode in self._backends:
                    return self._backends[mode]
                if mode in self._backend_errors:
                    raise self._backend_errors[mode]
            if mode not in self.modes():
                raise C2FError(f"unknown mode {mode!r}: choose one of {', '.join(self.modes())}")
            kind, _, ckpt = mode.partition(":")
            try:
                backend = load_backend(kind, ckpt or None, self.config.device)
            except C2FError as exc:
                with self._lock:
                    self._backend_errors[mode] = exc
                raise
            with self._lock:
                self._backends[mode] = backend
            return backend

    def mode_banner(self, mode: str) -> tuple[str, bool]:
        """(markdown, usable): what the active mode is, or exactly why it cannot run."""
        try:
            b = self.backend(mode)
        except C2FError as exc:
            return f"**Mode `{mode}` is not available.** {exc}".replace("\n", "  \n"), False
        if b.is_tiny:
            return f"### ⚠️ TINY TEST MODE: random weights, results are meaningless\n{b.description}", True
        return f"**Mode:** {b.name}. {b.description}", True

    def transcriber(self, mode: str):
        """The Whisper that "transcribe speech" uses in `mode`: the tiny random one in the tiny
        test mode, else C2F_WHISPER_MODEL (default base); missing weights say which files."""
        from c2f.speech.models import DEFAULT_WHISPER_MODEL, TINY_TEST_MODEL
        from c2f.speech.whisper import WhisperTranscriber

        tiny = self.backend(mode).is_tiny
        model = TINY_TEST_MODEL if tiny else os.environ.get("C2F_WHISPER_MODEL", DEFAULT_WHISPER_MODEL)
        with self._lock:
            found = self._transcribers.get(model)
        if found is None:
            found = WhisperTranscriber(model, device=self.config.device)
            with self._lock:
                found = self._transcribers.setdefault(model, found)
        return found

    def matching(self, mode: str, match: str = "visual"):
        """The backend of `mode` scoring clips by `match`: "visual", "speech" or "both"."""
        backend = self.backend(mode)
        if match == "visual":
            return backend
        if not hasattr(backend, "with_match"):
            raise C2FError(f"matching the words said needs the zero-shot or tiny mode, not {mode}")
        return backend.with_match(match)

    # --- visitors and collections ------------------------------------------------------------------
    def visitor(self, token: object, session_hash: str | None) -> str | None:
        """The visitor id of a request (None on a local run): the signed browser token, else the
        Gradio session of an API client."""
        if not self.config.multi_user:
            return None
        vid = self.keys.verify(token)
        if vid is None:
            if not session_hash:
                raise C2FError("this request has no session: reload the page")
            vid = self.keys.from_session(session_hash)
        self.sweeper.seen(vid)
        self.sweep_idle()
        return vid

    def browser_token(self, token: object) -> str | None:
        """The token a browser keeps: its own when this server signed it, else a new one."""
        if not self.config.multi_user:
            return None
        return token if self.keys.verify(token) else self.keys.new_token()

    def _folders(self, who: str | None) -> tuple[Path, Path]:
        root = self.config.library_root
        if who is None:
            return root, self.media_root / "local"
        if who == SHOWCASE:
            return root / SHOWCASE, self.media_root / SHOWCASE
        return root / "visitors" / who, self.media_root / self.keys.media_name(who)

    def collection(self, mode: str, who: str | None) -> Collection:
        b = self.backend(mode)
        preset = b.feature_settings.preset
        with self._lock:
            key = (preset, who or "")
            if key not in self._collections:
                lib_dir, media_dir = self._folders(who)
                self._collections[key] = Collection(
                    Library(lib_dir / preset, settings=b.feature_settings, device=self.config.device),
                    media_dir / preset,
                    read_only=who == SHOWCASE,
                )
            return self._collections[key]

    def library(self, mode: str, who: str | None = None) -> Library:
        return self.collection(mode, who).library

    def source(self, mode: str, who: str | None, source: str = "auto") -> str | None:
        """Whose collection a search or an evaluation reads: a visitor's own videos, or the showcase
        ('auto': the visitor's when they have indexed some)."""
        if who is None:
            return None
        if source == "examples":
            return SHOWCASE
        if source == "my videos" or any(r.status == "indexed" for r in self.library(mode, who).list()):
            return who
        return SHOWCASE

    def sweep_idle(self) -> list[str]:
        """Remove the collections of visitors idle for longer than `idle_minutes`."""
        visitors = self.config.library_root / "visitors"
        if not self.sweeper.due():
            return []
        folders = {
            d.name: [d, self._folders(d.name)[1], self.export_dir(d.name)]
            for d in (visitors.iterdir() if visitors.is_dir() else [])
        }
        removed = self.sweeper.sweep(folders)
        if removed:
            with self._lock:
                for key in [k for k in self._collections if k[1] in removed]:
                    del self._collections[key]
                for key in [k for k in list(self._media_made) if not k[0].is_dir()]:
                    self._media_made.pop(key, None)
        return removed

    def prepare_showcase(self, mode: str, progress: Callable | None = None) -> IndexOutcome:
        """Index the bundled examples into the read-only showcase (once; a restart finds them)."""
        coll = self.collection(mode, SHOWCASE)
        report = coll.library.add(example_videos(), copy=False, progress=progress)
        self._make_media(coll)
        return IndexOutcome(
            [r.name for r in report.added], [n for n, _ in report.duplicates], list(report.failed)
        )

    # --- media -------------------------------------------------------------------------------------
    def _make_media(self, coll: Collection) -> None:
        """Playable copy and thumbnail of every indexed video that has none yet."""
        for rec in coll.library.list():
            if rec.status == "indexed":
                self.media(coll, rec.video_id)

    def media(self, coll: Collection, video_id: str) -> tuple[Path, Path | None]:
        """(playable video, thumbnail or None) of one video of the collection."""
        made = self._media_made.get((coll.media, video_id))
        if made is not None and made[0].is_file():  # (a removed video takes its media with it)
            return made
        rec = coll.library.get(video_id)
        src = coll.library.video_path(video_id)
        video = playable_copy(src, coll.media, video_id)
        try:
            thumb = thumbnail(video, 0.3 * (rec.duration or 0.0), coll.media / f"{video_id}.jpg")
        except C2FError:
            thumb = None
        self._media_made[(coll.media, video_id)] = (video, thumb)
        return video, thumb

    # --- library -----------------------------------------------------------------------------------
    def _quota_left(self, coll: Collection, who: str | None) -> tuple[int, float, float]:
        """(videos, seconds, bytes) this collection may still take."""
        recs = coll.library.list()
        if who is None:
            return self.config.max_videos - len(recs), float("inf"), float("inf")
        c = self.config
        used_s = sum(r.duration or 0.0 for r in recs)
        used_b = folder_bytes(coll.library.root) + folder_bytes(coll.media)
        return (
            c.visitor_max_videos - len(recs),
            c.visitor_max_minutes * 60 - used_s,
            c.visitor_max_disk_mb * 1024 * 1024 - used_b,
        )

    def _check_video(self, f: Path) -> tuple[float, str | None]:
        """(duration, None) for an acceptable upload, else (0, plain-words reason)."""
        if f.suffix.lower() not in VIDEO_EXTENSIONS:
            return 0.0, f"not a video file type C2F reads ({', '.join(sorted(VIDEO_EXTENSIONS))})"
        if f.stat().st_size > self.config.max_upload_mb * 1024 * 1024:
            return 0.0, f"larger than the {self.config.max_upload_mb} MB limit of this server"
        try:
            info = probe_video(f)
        except VideoError as exc:
            return 0.0, exc.reason
        if info.duration > self.config.max_video_seconds:
            limit = self.config.max_video_seconds
            return 0.0, f"{info.duration:.0f} s long: this server accepts videos up to {limit:.0f} s"
        return info.duration, None

    def index(
        self,
        mode: str,
        paths: list[str | Path],
        progress: Callable[[str, float, float], None] | None = None,
        who: str | None = None,
        transcribe: bool = False,
    ) -> IndexOutcome:
        """Uploaded files: each video is checked against the limits and quotas on its own (a bad
        one is refused alone), subtitles are paired by file stem."""
        if not paths:
            raise C2FError("no file was given: upload one or more videos first")
        coll = self.collection(mode, who)
        if coll.read_only:
            raise LibraryError("the example collection is read-only")
        files = [Path(p) for p in paths]
        subs = {f.stem: f for f in files if f.suffix.lower() in SUBTITLE_EXTENSIONS}
        videos: list[Path] = []
        failed: list[tuple[str, str]] = []
        n_left, s_left, b_left = self._quota_left(coll, who)
        for f in files:
            if f.suffix.lower() in SUBTITLE_EXTENSIONS:
                continue
            duration, why = self._check_video(f)
            size = f.stat().st_size if f.is_file() else 0
            if why is None and n_left < 1:
                why = "over the quota of videos in your library: remove one first"
            elif why is None and duration > s_left:
                why = f"over the quota of {self.config.visitor_max_minutes:.0f} minutes of video per visitor"
            elif why is None and size * 2 > b_left:  # the stored copy and its playable link/copy
                why = f"over the quota of {self.config.visitor_max_disk_mb:.0f} MB of disk per visitor"
            if why:
                failed.append((f.name, why))
                continue
            n_left, s_left, b_left = n_left - 1, s_left - duration, b_left - 2 * size
            videos.append(f)
        if not videos:
            return IndexOutcome([], [], failed)
        report = coll.library.add(
            videos,
            copy=True,
            subtitles={str(v): subs[v.stem] for v in videos if v.stem in subs},
            progress=progress,
            transcriber=self.transcriber(mode) if transcribe else None,  # subtitles from speech
        )
        for rec in report.added:
            try:
                self.media(coll, rec.video_id)
            except C2FError as exc:
                failed.append((rec.name, f"indexed, but cannot be played in the browser: {exc}"))
        return IndexOutcome(
            [r.name for r in report.added],
            [n for n, _ in report.duplicates],
            failed + [(n, why) for n, why in report.failed],
        )

    def table(self, mode: str, who: str | None = None) -> list[list]:
        rows = []
        for r in self.library(mode, who).list():
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

    def remove(self, mode: str, video_id: str, who: str | None = None) -> str:
        if not video_id:
            raise C2FError("pick a video to remove")
        coll = self.collection(mode, who)
        if coll.read_only:
            raise LibraryError("the example collection is read-only")
        rec = coll.library.remove(video_id)
        for f in coll.media.glob(f"{video_id}.*"):
            f.unlink(missing_ok=True)
        return f"removed {rec.name}"

    def clear_legacy_cache(self, mode: str, who: str | None = None) -> None:
        """Moment cuts of earlier versions lived in <library>/cache/: nothing reads them now."""
        shutil.rmtree(self.library(mode, who).root / "cache", ignore_errors=True)

    # --- search ------------------------------------------------------------------------------------
    def search(
        self,
        mode: str,
        query: str,
        top_k: int = 5,
        moments: int = 3,
        who: str | None = None,
        source: str = "auto",
        match: str = "visual",
    ) -> tuple[SearchResult, Collection]:
        """`match`: score clips by what is seen ("visual"), said ("speech") or "both"."""
        src = self.source(mode, who, source)
        coll = self.showcase(mode) if src == SHOWCASE else self.collection(mode, src)
        return self._search(coll, mode, query, top_k, moments, match), coll

    def search_showcase(
        self, mode: str, query: str, top_k: int = 5, moments: int = 3
    ) -> tuple[SearchResult, Collection]:
        """A search of the read-only showcase: the same answer for every visitor (it may be cached)."""
        coll = self.showcase(mode)
        return self._search(coll, mode, query, top_k, moments), coll

    def _search(
        self, coll: Collection, mode: str, query: str, top_k: int, moments: int, match: str = "visual"
    ) -> SearchResult:
        return coll.library.search(
            query, self.matching(mode, match), top_k_videos=int(top_k), moments_per_video=int(moments)
        )

    def evaluate(
        self,
        mode: str,
        annotations: str | Path,
        top_k: int = 10,
        progress=None,
        who: str | None = None,
        source: str = "auto",
    ):
        from c2f.analysis import evaluate_library

        src = self.source(mode, who, source)
        lib = (self.showcase(mode) if src == SHOWCASE else self.collection(mode, src)).library
        return evaluate_library(
            lib, self.backend(mode), annotations, top_k_videos=int(top_k), progress=progress
        )

    @property
    def export_root(self) -> Path:
        """Downloads are written under the system's temporary folder, from where Gradio copies them
        into its own cache to serve them; never under the library root, never served from here."""
        tag = hashlib.sha1(str(self.config.library_root.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"c2f-exports-{tag}"

    def export_dir(self, who: str | None) -> Path:
        """Where a visitor's downloads (prediction files) are written: one folder, overwritten."""
        return self.export_root / ("local" if who is None else self.keys.media_name(who))

    def export_predictions(self, evaluation, who: str | None) -> Path:
        """The evaluation's TVR prediction file, one per visitor, replaced whole (never half written)."""
        data = json.dumps(evaluation.predictions.to_json()).encode()
        return atomic_write_bytes(self.export_dir(who) / "tvr_predictions.json", data)

    def start(self, mode: str) -> None:
        """At start-up: the served folder exists, old moment cuts go, and on a public deployment the
        showcase is indexed now (outside any visitor's request and GPU budget)."""
        self.media_root.mkdir(parents=True, exist_ok=True)
        self.export_root.mkdir(parents=True, exist_ok=True)
        try:
            if self.config.multi_user:
                self.showcase(mode)
            else:
                self.clear_legacy_cache(mode)
        except C2FError as exc:  # the banner says why the mode cannot run
            print(f"c2f: the showcase is not ready: {exc}")

    def showcase(self, mode: str) -> Collection:
        """The read-only example collection of `mode`'s feature preset, indexed on first need."""
        coll = self.collection(mode, SHOWCASE)
        with self._showcase_lock:
            if not any(r.status == "indexed" for r in coll.library.list()):
                self.prepare_showcase(mode)
        return coll

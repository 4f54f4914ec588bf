"""A video library on disk: catalog (SQLite), feature files, and one clip index per search backend.

Layout of the library folder:
  catalog.sqlite                  videos (status pending/indexed/failed, errors, metadata) + settings
  videos/<video_id><ext>          copies of the added files (unless added by reference)
  features/<video_id>.safetensors ClipFeatures, written atomically
  indexes/<fingerprint>/current   names the live version folder (swapped by an atomic rename)
  indexes/<fingerprint>/vNNNNNN/  clips.faiss + clips.json of one saved version
  write.lock                      writers (add/remove/reindex) hold an exclusive flock on it

Crash safety: a catalog row becomes "indexed" only after its feature file exists; an index version
is complete before `current` points at it. Readers take one catalog snapshot and bring the last
saved index up to date with it in memory (missing videos added from their feature files, removed
ones dropped), so a search always sees a committed state, and a killed run loses nothing but the
video it was working on; running `add` again (or `resume`) finishes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from c2f.errors import C2FError, FeatureFileError, FeatureMismatchError, LibraryError, NotAFileError
from c2f.features import ClipFeatures, FeatureSettings, get_preset, load_features, save_features
from c2f.library.catalog import Catalog, VideoRecord
from c2f.search.zero_shot import clip_stream_vectors, zero_shot_fingerprint
from c2f.video.files import find_videos

if TYPE_CHECKING:
    from c2f.index import ClipIndex
    from c2f.search.backends import SearchBackend
    from c2f.search.types import SearchResult

log = logging.getLogger(__name__)

DEFAULT_PRESET = "clip-only"  # fast CPU indexing; enough for the zero-shot backend
INDEX_SAVE_EVERY_S = 10.0  # while adding, save the index at most this often (and at the end)
FEATURE_CACHE_SIZE = 256

# progress(video name, fraction of this video done, fraction of the whole run done)
AddProgress = Callable[[str, float, float], None]
VectorsFn = Callable[[ClipFeatures], np.ndarray]


@dataclass
class AddReport:
    added: list[VideoRecord] = field(default_factory=list)  # newly indexed (or resumed) videos
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (file name, existing video id)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file name, error message)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class _CachedIndex:
    version: str  # the `current` pointer it was loaded from ("" when built from nothing)
    index: ClipIndex
    synced_to: dict | None = None  # the catalog snapshot it matches (identity: snapshots are cached)


def default_library_root() -> Path:
    return Path(os.environ.get("C2F_LIBRARY", "c2f_library"))


def open_library(root: str | Path | None = None, device: str | None = None) -> Library:
    """An existing library (LibraryError when there is none), for commands that only read it."""
    path = Path(root) if root is not None else default_library_root()
    if not (path / "catalog.sqlite").is_file():
        raise LibraryError(
            f"no library at {path}: add videos with `python -m c2f index PATH --library {path}`"
        )
    return Library(path, device=device)


def _file_sha256(path: Path) -> str:
    from c2f.features.extract import file_sha256

    return file_sha256(path)


class Library:
    def __init__(
        self,
        root: str | Path | None = None,
        settings: FeatureSettings | str | None = None,
        device: str | None = None,
    ) -> None:
        """Open (or create) the library at `root`; `settings` (or a preset name) only at creation."""
        self.root = Path(root) if root is not None else default_library_root()
        self.root.mkdir(parents=True, exist_ok=True)
        for sub in ("videos", "features", "indexes"):
            (self.root / sub).mkdir(exist_ok=True)
        self.device = device
        self.catalog = Catalog(self.root / "catalog.sqlite")
        asked = get_preset(settings) if isinstance(settings, str) else settings
        stored = self.catalog.init_meta(
            "settings", json.dumps((asked or get_preset(DEFAULT_PRESET)).to_dict(), sort_keys=True)
        )
        self.settings = FeatureSettings.from_dict(json.loads(stored))
        if asked is not None and asked.fingerprint() != self.settings.fingerprint():
            raise FeatureMismatchError(
                f"the library {self.root} was created with feature preset {self.settings.preset!r}, "
                f"not {asked.preset!r}: its settings are fixed; use another library folder"
            )
        self._lock = threading.RLock()  # guards the caches below
        self._indexes: dict[str, _CachedIndex] = {}
        self._features: OrderedDict[str, ClipFeatures] = OrderedDict()
        self._indexed: tuple[str, dict[int, VideoRecord]] | None = None  # (generation, snapshot)

    # --- paths -----------------------------------------------------------------------------------
    def feature_path(self, video_id: str) -> Path:
        return self.root / "features" / f"{video_id}.safetensors"

    def index_dir(self, fingerprint: str) -> Path:
        return self.root / "indexes" / fingerprint

    @property
    def zero_shot_fingerprint(self) -> str:
        return zero_shot_fingerprint(self.settings)

    # --- reading ---------------------------------------------------------------------------------
    def list(self) -> list[VideoRecord]:
        """Every video in the catalog (indexed, pending and failed), oldest first."""
        return self.catalog.all()

    def get(self, video_id: str) -> VideoRecord:
        rec = self.catalog.by_id(video_id)
        if rec is None:
            raise LibraryError(f"no video {video_id!r} in the library {self.root}")
        return rec

    def video_path(self, video_id: str) -> Path:
        """The playable file of a video (its copy in the library, or the original when referenced)."""
        path = Path(self.get(video_id).stored_path)
        if not path.is_file():
            raise LibraryError(f"the file of video {video_id} is gone: {path}")
        return path

    def load_features(self, video_id: str) -> ClipFeatures:
        with self._lock:
            if video_id in self._features:
                self._features.move_to_end(video_id)
                return self._features[video_id]
        feats = load_features(self.feature_path(video_id), expected=self.settings)
        with self._lock:
            self._features[video_id] = feats
            while len(self._features) > FEATURE_CACHE_SIZE:
                self._features.popitem(last=False)
        return feats

    # --- locking ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _write_lock(self, wait: bool = True) -> Iterator[bool]:
        """Exclusive across processes and threads (flock on a fresh descriptor); yields False when
        `wait` is False and another writer holds it."""
        with open(self.root / "write.lock", "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _clean_temp_files(self) -> None:
        """Leftovers of a killed writer (only called while holding the write lock)."""
        for pattern in ("videos/.tmp-*", "features/.tmp-*", "indexes/*/.tmp-*", "indexes/*/v*/.tmp-*"):
            for p in self.root.glob(pattern):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)

    # --- index versions ---------------------------------------------------------------------------
    def _current_version(self, fingerprint: str) -> str:
        try:
            return (self.index_dir(fingerprint) / "current").read_text().strip()
        except FileNotFoundError:
            return ""

    def _load_index(self, fingerprint: str) -> _CachedIndex | None:
        """The last saved version, or None when none was saved yet."""
        from c2f.index import ClipIndex
        from c2f.index.clip_index import IndexError_

        for _ in range(5):  # a writer may swap versions between reading `current` and the files
            version = self._current_version(fingerprint)
            if not version:
                return None
            try:
                return _CachedIndex(version, ClipIndex.load(self.index_dir(fingerprint) / version))
            except IndexError_:
                time.sleep(0.05)
        return None  # unreadable: rebuilt from the feature files by the caller

    def _save_index(self, fingerprint: str, index: ClipIndex) -> str:
        """Write a new version folder, then point `current` at it (caller holds the write lock)."""
        d = self.index_dir(fingerprint)
        d.mkdir(parents=True, exist_ok=True)
        old = self._current_version(fingerprint)
        number = int(old[1:]) + 1 if old else 1
        version = f"v{number:06d}"
        tmp_dir = Path(tempfile.mkdtemp(prefix=".tmp-", dir=d))
        index.save(tmp_dir)
        os.replace(tmp_dir, d / version)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
        with os.fdopen(fd, "w") as f:
            f.write(version)
        os.replace(tmp, d / "current")
        # Keep the previous version for readers that just read the old pointer.
        for p in d.glob("v*"):
            if p.is_dir() and p.name < f"v{number - 1:06d}":
                shutil.rmtree(p, ignore_errors=True)
        return version

    def _sync(
        self,
        index: ClipIndex | None,
        indexed: dict[int, VideoRecord],
        vectors_of: VectorsFn,
        fingerprint: str,
    ) -> tuple[ClipIndex | None, bool]:
        """Bring `index` to exactly the `indexed` videos; returns (index, whether it changed)."""
        from c2f.index import ClipIndex

        changed = False
        if index is not None:
            for key in [k for k in index.video_keys() if k not in indexed]:
                index.remove(key)
                changed = True
        missing = [k for k in indexed if index is None or k not in index]
        batch: dict[int, np.ndarray] = {}
        for key in missing:
            try:
                batch[key] = vectors_of(self.load_features(indexed[key].video_id))
            except FeatureFileError as exc:
                if self.catalog.by_key(key) is not None:  # not a concurrent removal: say so, go on
                    log.warning("video %s is left out of the search: %s", indexed[key].name, exc)
        if batch:
            if index is None:
                index = ClipIndex(next(iter(batch.values())).shape[1], fingerprint, kind="auto")
            index.add_many(batch)
            changed = True
        return index, changed

    def _indexed_snapshot(self) -> dict[int, VideoRecord]:
        """{key: record} of the indexed videos, re-read only when the catalog generation moved."""
        generation = self.catalog.generation()
        with self._lock:
            if self._indexed is not None and self._indexed[0] == generation:
                return self._indexed[1]
        generation, records = self.catalog.indexed_snapshot()
        snapshot = {r.key: r for r in records}
        with self._lock:
            self._indexed = (generation, snapshot)
        return snapshot

    @contextlib.contextmanager
    def snapshot(
        self, fingerprint: str, vectors_of: VectorsFn
    ) -> Iterator[tuple[ClipIndex, dict[int, VideoRecord]]]:
        """The index of one backend, exactly matching one catalog snapshot of the indexed videos,
        as (index, {video key: record}); both stay unchanged inside the `with` block (other
        searches of this object wait). Raises LibraryError when no video is indexed."""
        indexed = self._indexed_snapshot()
        if not indexed:
            pending = self.catalog.count("pending")
            extra = f" ({pending} video(s) are still being indexed)" if pending else ""
            raise LibraryError(f"the library is empty: add videos first{extra}")
        with self._lock:
            yield self._synced_index(fingerprint, vectors_of, indexed), indexed

    def _synced_index(
        self, fingerprint: str, vectors_of: VectorsFn, indexed: dict[int, VideoRecord]
    ) -> ClipIndex:
        with self._lock:
            cached = self._indexes.get(fingerprint)
            version = self._current_version(fingerprint)
            if cached is not None and cached.version == version and cached.synced_to is indexed:
                return cached.index  # nothing moved since the last search
            if cached is None or (version and cached.version != version):
                cached = self._load_index(fingerprint) or _CachedIndex("", None)  # type: ignore[arg-type]
            index, changed = self._sync(cached.index, indexed, vectors_of, fingerprint)
            assert index is not None  # indexed is not empty
            cached = _CachedIndex(cached.version, index, indexed)
            if changed:
                # Share the work with later readers, unless a writer is busy (it saves soon anyway).
                with self._write_lock(wait=False) as got:
                    if got and self._current_version(fingerprint) == cached.version:
                        cached.version = self._save_index(fingerprint, index)
            self._indexes[fingerprint] = cached
            return index

    # --- writing ---------------------------------------------------------------------------------
    def _store_file(self, src: Path, video_id: str, copy: bool) -> Path:
        if not copy:
            return src.resolve()
        dest = self.root / "videos" / f"{video_id}{src.suffix.lower()}"
        if not dest.is_file() or dest.stat().st_size != src.stat().st_size:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=dest.parent)
            os.close(fd)
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        return dest

    def _subtitles_for(self, src: Path, subtitles: str | Path | dict | None, n_files: int) -> Path | None:
        from c2f.features.subtitles import find_sidecar_subtitles

        if isinstance(subtitles, dict):
            given = subtitles.get(str(src), subtitles.get(src.name))
            if given is not None:
                return Path(given)
        elif subtitles is not None:
            if n_files != 1:
                raise LibraryError("one subtitle file was given for several videos: pass {video: subtitles}")
            return Path(subtitles)
        return find_sidecar_subtitles(src)  # e.g. movie.srt next to movie.mp4

    def add(
        self,
        paths: str | Path | Iterable[str | Path],
        copy: bool = True,
        subtitles: str | Path | dict[str, str | Path] | None = None,
        progress: AddProgress | None = None,
    ) -> AddReport:
        """Index video files (folders are searched recursively). Same content twice is a no-op;
        a failing video is recorded with its error and the others go on. `copy=False` keeps a
        reference to the original file instead of a copy. `subtitles`: a file (one video) or
        {video path or name: file}; by default a sidecar .srt/.vtt next to each video is used."""
        files = find_videos([paths] if isinstance(paths, (str, Path)) else paths)
        return self._index_files([(f, None) for f in files], copy, subtitles, progress)

    def resume(self, progress: AddProgress | None = None) -> AddReport:
        """Finish videos left pending by an interrupted run (their stored files are re-read)."""
        rows = [r for r in self.catalog.all("pending") if Path(r.stored_path).is_file()]
        return self._index_files([(Path(r.stored_path), r) for r in rows], True, None, progress)

    def _index_files(
        self,
        files: list[tuple[Path, VideoRecord | None]],
        copy: bool,
        subtitles: str | Path | dict | None,
        progress: AddProgress | None,
    ) -> AddReport:
        from c2f.features.extract import extract_features

        report = AddReport()
        n = max(len(files), 1)
        fingerprint = self.zero_shot_fingerprint
        with self._write_lock():
            self._clean_temp_files()
            loaded = self._load_index(fingerprint)
            indexed = {r.key: r for r in self.catalog.all("indexed")}
            index, dirty = self._sync(
                loaded.index if loaded else None, indexed, clip_stream_vectors, fingerprint
            )
            last_save = time.monotonic()
            for i, (src, resumed) in enumerate(files):
                name = resumed.name if resumed else src.name
                skipped = True
                try:
                    if not src.is_file():
                        raise NotAFileError(str(src), "not found or not a regular file")
                    content_hash = resumed.content_hash if resumed else _file_sha256(src)
                    rec = self.catalog.by_hash(content_hash)
                    if rec is not None and rec.status == "indexed":
                        report.duplicates.append((name, rec.video_id))
                    else:
                        subs = None if resumed else self._subtitles_for(src, subtitles, len(files))
                        video_id = content_hash[:12]
                        stored = (
                            Path(resumed.stored_path) if resumed else self._store_file(src, video_id, copy)
                        )
                        skipped = False
                except (OSError, C2FError) as exc:  # unreadable file, disk full: nothing recorded yet
                    report.failed.append((name, str(exc)))
                if skipped:
                    if progress:
                        progress(name, 1.0, (i + 1) / n)
                    continue
                is_copy = resumed.is_copy if resumed else copy
                if rec is None:
                    key = self.catalog.insert_pending(video_id, name, content_hash, str(stored), is_copy)
                else:  # pending (killed run) or failed before: try again
                    key = rec.key
                    self.catalog.reset_pending(key, name, str(stored), is_copy)
                if progress:  # reported once the row exists: an interruption from here on resumes
                    progress(name, 0.0, i / n)

                def on_progress(done: float, total: float, name: str = name, i: int = i) -> None:
                    if progress:
                        f = done / total if total > 0 else 1.0
                        progress(name, f, (i + f) / n)

                try:
                    feats = extract_features(
                        stored,
                        self.settings,
                        video_id=video_id,
                        subtitles=subs,
                        device=self.device,
                        progress=on_progress,
                        content_hash=content_hash,  # hashed above: a second pass over the file saved
                    )
                    feats.video = replace(feats.video, source_name=name)
                    save_features(feats, self.feature_path(video_id))
                    self.catalog.mark_indexed(
                        key,
                        duration=feats.video.duration,
                        fps=feats.video.fps,
                        width=feats.video.width,
                        height=feats.video.height,
                        num_clips=feats.num_clips,
                        settings_fingerprint=self.settings.fingerprint(),
                        subtitles=[s.__dict__ for s in feats.subtitles],
                    )
                except Exception as exc:  # any failure is this video's, never the whole run's
                    message = str(exc) if isinstance(exc, C2FError) else f"{type(exc).__name__}: {exc}"
                    message = message.replace(str(stored), str(src))  # name the user's file, not our copy
                    self.catalog.mark_failed(key, message)
                    if is_copy:
                        stored.unlink(missing_ok=True)
                    report.failed.append((name, message))
                    continue
                with self._lock:
                    self._features[video_id] = feats
                index, _ = self._sync(
                    index, {**indexed, key: self.catalog.by_key(key)}, clip_stream_vectors, fingerprint
                )
                indexed[key] = self.catalog.by_key(key)
                dirty = True
                report.added.append(indexed[key])
                if time.monotonic() - last_save > INDEX_SAVE_EVERY_S and index is not None:
                    self._save_index(fingerprint, index)
                    dirty, last_save = False, time.monotonic()
            if dirty and index is not None:
                self._save_index(fingerprint, index)
        return report

    def remove(self, video_id: str) -> VideoRecord:
        """Forget a video: catalog row first (searches stop seeing it), then its index entries and files."""
        with self._write_lock():
            rec = self.get(video_id)
            self.catalog.delete(rec.key)
            for d in sorted(p for p in (self.root / "indexes").iterdir() if p.is_dir()):
                loaded = self._load_index(d.name)
                if loaded is not None and rec.key in loaded.index:
                    loaded.index.remove(rec.key)
                    self._save_index(d.name, loaded.index)
            self.feature_path(video_id).unlink(missing_ok=True)
            if rec.is_copy:
                Path(rec.stored_path).unlink(missing_ok=True)
        with self._lock:
            self._features.pop(video_id, None)
        return rec

    def reindex(self, backend: SearchBackend | None = None) -> int:
        """Rebuild the index of `backend` (default: the zero-shot one) from the feature files;
        returns the number of videos in it."""
        fingerprint = backend.fingerprint if backend is not None else self.zero_shot_fingerprint
        vectors_of = backend.clip_vectors if backend is not None else clip_stream_vectors
        if backend is not None:
            backend.check_library(self.settings)
        with self._write_lock():
            self._clean_temp_files()
            indexed = {r.key: r for r in self.catalog.all("indexed")}
            index, _ = self._sync(None, indexed, vectors_of, fingerprint)
            if index is None:
                shutil.rmtree(self.index_dir(fingerprint), ignore_errors=True)
                return 0
            self._save_index(fingerprint, index)
        with self._lock:
            self._indexes.pop(fingerprint, None)
        return index.num_videos

    # --- search ----------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        backend: SearchBackend | str = "zero-shot",
        top_k_videos: int = 10,
        moments_per_video: int = 3,
    ) -> SearchResult:
        """Coarse-to-fine search: top videos by Eq. 3, then moments inside each (see c2f.search.engine)."""
        from c2f.search.backends import load_backend
        from c2f.search.engine import search_library

        if isinstance(backend, str):
            backend = load_backend(backend, device=self.device)
        return search_library(self, backend, query, top_k_videos, moments_per_video)

"""A video library on disk: catalog (SQLite), feature files, and one clip index per search backend.

Layout of the library folder:
  catalog.sqlite                  videos (status pending/indexed/failed, errors, metadata) + settings
  videos/<video_id><ext>          copies of the added files (unless added by reference)
  features/<video_id>.safetensors ClipFeatures, written atomically
  indexes/<fingerprint>/current   names the live version folder (swapped by an atomic rename)
  indexes/<fingerprint>/vNNNNNN/  clips.faiss + clips.json of one saved version
  write.lock                      writers (add/remove/reindex) hold an exclusive flock on it

This module is the facade; the rooms behind it: storage.py (paths, copies, feature cache),
lease.py (the writer's lease on a vector store), indexes.py (index versions, sync, in-memory cache), ingest.py (adding
videos), catalog.py (the SQLite table).

Crash safety: a catalog row becomes "indexed" only after its feature file exists; an index version
is complete before `current` points at it. Readers take one catalog snapshot and bring the last
saved index up to date with it in memory (missing videos added from their feature files, removed
ones dropped), so a search always sees a committed state.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from c2f.errors import FeatureMismatchError, LibraryError
from c2f.features import ClipFeatures, FeatureSettings, get_preset
from c2f.library.catalog import Catalog, VideoRecord
from c2f.library.indexes import IndexCache, IndexSync, IndexVersions, VectorsFn, index_maker
from c2f.library.ingest import AddProgress, AddReport, Ingest, SubtitlesArg, transcript_path
from c2f.library.lease import writer_lease
from c2f.library.storage import FeatureCache, LibraryFiles
from c2f.search.backends import IndexSpec, default_index_for
from c2f.shared_files import exclusive_lock
from c2f.video.files import find_videos

if TYPE_CHECKING:
    from c2f.features.parallel import Extractor
    from c2f.index import ClipIndex
    from c2f.search.backends import SearchBackend
    from c2f.search.by_example import Query
    from c2f.search.types import Moment, SearchResult
    from c2f.speech.whisper import WhisperTranscriber

__all__ = ["AddReport", "Library", "default_library_root", "find_videos", "open_library"]

DEFAULT_PRESET = "clip-only"  # fast CPU indexing; enough for the zero-shot backend


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


class Library:
    def __init__(
        self,
        root: str | Path | None = None,
        settings: FeatureSettings | str | None = None,
        device: str | None = None,
        vector_store: str | None = None,
    ) -> None:
        """Open (or create) the library at `root`; `settings` (or a preset name) only at creation.
        `vector_store` (only at creation): where clip vectors live, "faiss" (default, in memory),
        "qdrant://..." (c2f.index.qdrant_store; extra c2f[qdrant]) or "milvus://..." (c2f[milvus])."""
        self.root = Path(root) if root is not None else default_library_root()
        self.files = LibraryFiles(self.root)
        self.device = device
        self.catalog = Catalog(self.files.catalog_path)
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
        self.vector_store = self.catalog.init_meta("vector_store", vector_store or "faiss")
        if vector_store is not None and vector_store != self.vector_store:
            raise LibraryError(
                f"the library {self.root} keeps its vectors in {self.vector_store}, not {vector_store}: "
                "use another library folder"
            )
        self.features = FeatureCache(self.files, self.settings)
        self.versions = IndexVersions(self.files)
        make_index = index_maker(self.vector_store, self.root)
        self.sync_index = IndexSync(self.features.load, self.is_listed, make_index)
        self.indexes = IndexCache(self.versions, self.sync_index, lambda: self._write_lock(wait=False))
        self._snapshot_lock = threading.Lock()
        self._indexed: tuple[str, dict[int, VideoRecord]] | None = None  # (generation, snapshot)

    # --- paths -----------------------------------------------------------------------------------
    def feature_path(self, video_id: str) -> Path:
        return self.files.feature_path(video_id)

    def index_dir(self, fingerprint: str) -> Path:
        return self.files.index_dir(fingerprint)

    @property
    def default_index(self) -> IndexSpec:
        """The index kept current while videos are added (the default search mode's)."""
        return default_index_for(self.settings)

    # --- reading ---------------------------------------------------------------------------------
    def list(self) -> list[VideoRecord]:
        """Every video in the catalog (indexed, pending and failed), oldest first."""
        return self.catalog.all()

    def get(self, video_id: str) -> VideoRecord:
        rec = self.catalog.by_id(video_id)
        if rec is None:
            raise LibraryError(f"no video {video_id!r} in the library {self.root}")
        return rec

    def is_listed(self, key: int) -> bool:
        """Whether the catalog still holds the video of this key (False once it was removed)."""
        return self.catalog.by_key(key) is not None

    def video_path(self, video_id: str) -> Path:
        """The playable file of a video (its copy in the library, or the original when referenced)."""
        path = Path(self.get(video_id).stored_path)
        if not path.is_file():
            raise LibraryError(f"the file of video {video_id} is gone: {path}")
        return path

    def load_features(self, video_id: str) -> ClipFeatures:
        return self.features.load(video_id)

    def _write_lock(self, wait: bool = True) -> contextlib.AbstractContextManager[bool]:
        return exclusive_lock(self.files.lock_path, wait)

    def _indexed_snapshot(self) -> dict[int, VideoRecord]:
        """{key: record} of the indexed videos, re-read only when the catalog generation moved."""
        generation = self.catalog.generation()
        with self._snapshot_lock:
            if self._indexed is not None and self._indexed[0] == generation:
                return self._indexed[1]
        generation, records = self.catalog.indexed_snapshot()
        snapshot = {r.key: r for r in records}
        with self._snapshot_lock:
            self._indexed = (generation, snapshot)
        return snapshot

    @contextlib.contextmanager
    def snapshot(
        self, fingerprint: str, vectors_of: VectorsFn
    ) -> Iterator[tuple[ClipIndex, Mapping[int, VideoRecord]]]:
        """The index of one backend, exactly matching one catalog snapshot of the indexed videos,
        as (index, {video key: record}); both stay unchanged inside the `with` block (other
        searches of this object wait). Raises LibraryError when no video is indexed."""
        indexed = self._indexed_snapshot()
        if not indexed:
            pending = self.catalog.count("pending")
            extra = f" ({pending} video(s) are still being indexed)" if pending else ""
            raise LibraryError(f"the library is empty: add videos first{extra}")
        with self.indexes.lock:
            yield self.indexes.synced(fingerprint, vectors_of, indexed), indexed

    # --- writing ---------------------------------------------------------------------------------
    def add(
        self,
        paths: str | Path | Iterable[str | Path],
        copy: bool = True,
        subtitles: SubtitlesArg = None,
        progress: AddProgress | None = None,
        transcriber: WhisperTranscriber | None = None,
        extractor: Extractor | None = None,
    ) -> AddReport:
        """Index video files (folders are searched recursively). Same content twice is a no-op;
        a failing video is recorded with its error and the others go on. `copy=False` keeps a
        reference to the original file instead of a copy. `subtitles`: a file (one video) or
        {video path or name: file}; by default a sidecar .srt/.vtt next to each video is used.
        A subtitle file that cannot be read leaves its video without subtitles (report.warnings).
        `transcriber` (c2f.speech.whisper): videos left without subtitle cues get the transcript
        of their speech instead, marked as machine-made in their features. `extractor`
        (c2f.features.parallel.make_extractor): many videos at once (decoding workers, Ray)."""
        files = find_videos([paths] if isinstance(paths, (str, Path)) else paths)
        return self._ingest([(f, None) for f in files], copy, subtitles, progress, transcriber, extractor)

    def resume(
        self, progress: AddProgress | None = None, transcriber: WhisperTranscriber | None = None
    ) -> AddReport:
        """Finish videos left pending by an interrupted run (their stored files are re-read).

        Transcribes only with a `transcriber`; what the interrupted run used is
        `c2f.library.ingest.recorded_run_speech(self.catalog)` (the CLI resumes with it by default)."""
        rows = [r for r in self.catalog.all("pending") if Path(r.stored_path).is_file()]
        return self._ingest([(Path(r.stored_path), r) for r in rows], True, None, progress, transcriber)

    def _ingest(
        self,
        files: list[tuple[Path, VideoRecord | None]],
        copy: bool,
        subtitles: SubtitlesArg,
        progress: AddProgress | None,
        transcriber: WhisperTranscriber | None = None,
        extractor: Extractor | None = None,
    ) -> AddReport:
        with self._write_lock():
            self.files.clean_temp_files()
            return Ingest(self, progress, transcriber).run(files, copy, subtitles, extractor)

    def remove(self, video_id: str) -> VideoRecord:
        """Forget a video: catalog row first (searches stop seeing it), then its index entries and files."""
        with self._write_lock():
            rec = self.get(video_id)
            self.catalog.delete(rec.key)
            self.versions.remove_video(rec.key, writer_lease(self.files.lock_path))
            self.files.feature_path(video_id).unlink(missing_ok=True)
            transcript_path(self.files, video_id).unlink(missing_ok=True)
            if rec.is_copy:
                Path(rec.stored_path).unlink(missing_ok=True)
        self.features.drop(video_id)
        return rec

    def reindex(self, backend: SearchBackend | None = None) -> int:
        """Rebuild the index of `backend` (default: the default mode's) from the feature files;
        returns the number of videos in it."""
        spec = (
            IndexSpec(backend.fingerprint, backend.clip_vectors)
            if backend is not None
            else self.default_index
        )
        if backend is not None:
            backend.check_library(self.settings)
        with self._write_lock():
            self.files.clean_temp_files()
            indexed = {r.key: r for r in self.catalog.all("indexed")}
            lease = writer_lease(self.files.lock_path)
            index, _ = self.sync_index(None, indexed, spec.vectors_of, spec.fingerprint, lease)
            if index is None:
                self.versions.delete(spec.fingerprint)
                return 0
            self.versions.save(spec.fingerprint, index)
        self.indexes.forget(spec.fingerprint)
        return index.num_videos

    # --- search ----------------------------------------------------------------------------------
    def search(
        self,
        query: str | Query,
        backend: SearchBackend | str = "zero-shot",
        top_k_videos: int = 10,
        moments_per_video: int = 3,
    ) -> SearchResult:
        """Coarse-to-fine search: top videos by Eq. 3, then moments inside each (see c2f.search.engine).
        `query`: a sentence, or a `c2f.search.Query`: a moment of a library video ("more like
        this", the source moment left out) or a picture, alone or mixed with a sentence at a
        stated weight (c2f.search.by_example)."""
        from c2f.search.backends import load_backend
        from c2f.search.engine import search_library

        if isinstance(backend, str):
            backend = load_backend(backend, device=self.device)
        return search_library(self, backend, query, top_k_videos, moments_per_video)

    # --- export ----------------------------------------------------------------------------------
    def export(
        self,
        moments: Iterable[Moment],
        out_dir: str | Path,
        fmt: str,
        exact_cuts: bool = False,
        title: str = "C2F moments",
    ) -> list[Path]:
        """Write found moments (a search's, or a chosen subset, best first) into `out_dir` as
        "csv", "json", "edl" (CMX 3600) or "clips" (a zip of cut clips: re-encoded exact cuts
        with `exact_cuts`, else stream copies from the keyframe before each moment); returns the
        files written (c2f.export)."""
        from c2f.export import ExportMoment, export_moments

        chosen = [
            ExportMoment(m.video_id, m.name, self.video_path(m.video_id), m.start, m.end, m.score)
            for m in moments
        ]
        return export_moments(chosen, out_dir, fmt, exact_cuts, title)


"""The clip indexes of a library: saved versions on disk, their sync with the catalog, and the
in-memory copy each search backend reuses between searches.

indexes/<fingerprint>/current names the live version folder vNNNNNN/ (clips.faiss + clips.json);
a new version is complete before `current` is swapped to it by an atomic rename, and the previous
one is kept for readers that have just read the old pointer. A library on a vector store
(c2f/index/external_store.py) saves a pointer instead, and only its writer, holding the write lock
and its lease, changes the store: a reader's sync writes nothing, it narrows its view to the
snapshot (`ExternalIndex.show_only`).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from c2f.errors import C2FError, FeatureFileError
from c2f.features import ClipFeatures
from c2f.library.catalog import VideoRecord
from c2f.library.storage import LibraryFiles
from c2f.shared_files import atomic_folder, atomic_write_text

if TYPE_CHECKING:
    from c2f.index import ClipIndex
    from c2f.index.external_store import ExternalIndex
    from c2f.library.lease import WriterLease

log = logging.getLogger(__name__)

VectorsFn = Callable[[ClipFeatures], np.ndarray]  # one video's (N, d) vectors in an index's space


@dataclass
class LoadedIndex:
    version: str  # the `current` pointer it was loaded from ("" when built from nothing)
    index: ClipIndex | None
    synced_to: Mapping[int, VideoRecord] | None = None  # the catalog snapshot it matches (by identity)


class IndexVersions:
    """The saved versions of every index of one library folder."""

    def __init__(self, files: LibraryFiles) -> None:
        self.files = files

    def current(self, fingerprint: str) -> str:
        try:
            return (self.files.index_dir(fingerprint) / "current").read_text().strip()
        except FileNotFoundError:
            return ""

    def load(self, fingerprint: str) -> LoadedIndex | None:
        """The last saved version, or None when none was saved yet (or it stays unreadable)."""
        from c2f.index.clip_index import IndexError_

        for _ in range(5):  # a writer may swap versions between reading `current` and the files
            version = self.current(fingerprint)
            if not version:
                return None
            try:
                return LoadedIndex(version, load_saved_index(self.files.index_dir(fingerprint) / version))
            except IndexError_:
                time.sleep(0.05)
        return None  # unreadable: rebuilt from the feature files by the caller

    def save(self, fingerprint: str, index: ClipIndex) -> str:
        """Write a new version folder, then point `current` at it (caller holds the write lock)."""
        d = self.files.index_dir(fingerprint)
        d.mkdir(parents=True, exist_ok=True)
        old = self.current(fingerprint)
        number = int(old[1:]) + 1 if old else 1
        version = f"v{number:06d}"
        with atomic_folder(d / version) as tmp:
            index.save(tmp)
        atomic_write_text(d / "current", version)
        for p in d.glob("v*"):  # keep the previous version for readers of the old pointer
            if p.is_dir() and p.name < f"v{number - 1:06d}":
                shutil.rmtree(p, ignore_errors=True)
        return version

    def remove_video(self, key: int, lease: WriterLease) -> None:
        """Take one video out of every saved index (the caller holds the write lock: `lease`)."""
        from c2f.index.external_store import ExternalIndex

        for d in self.files.index_dirs():
            loaded = self.load(d.name)
            if loaded is None or loaded.index is None:
                continue
            if isinstance(loaded.index, ExternalIndex):
                loaded.index.open_for_writing(lease)
            if key in loaded.index:
                loaded.index.remove(key)
                self.save(d.name, loaded.index)

    def delete(self, fingerprint: str) -> None:
        shutil.rmtree(self.files.index_dir(fingerprint), ignore_errors=True)


def load_saved_index(directory: Path) -> ClipIndex:
    """A saved version: faiss files, or a pointer (store.json) to a vector store, which names it."""
    from c2f.index import ClipIndex
    from c2f.index.external_store import is_saved_pointer, read_pointer

    if not is_saved_pointer(directory):
        return ClipIndex.load(directory)
    if read_pointer(directory)["store"] == "qdrant":
        from c2f.index.qdrant_store import QdrantClipIndex

        return QdrantClipIndex.load(directory)  # type: ignore[return-value]
    from c2f.index.milvus_store import MilvusClipIndex

    return MilvusClipIndex.load(directory)  # type: ignore[return-value]


def index_maker(vector_store: str, library_root: Path) -> Callable[[int, str], ClipIndex] | None:
    """How new indexes of a library are made: None for faiss (the default), else the store's."""
    if vector_store == "faiss":
        return None
    from c2f.index import milvus_store, qdrant_store

    # The location is checked now: a bad setting fails before any video is read.
    if qdrant_store.is_qdrant_uri(vector_store):
        location = qdrant_store.client_uri(vector_store, library_root)
        return lambda dim, fingerprint: qdrant_store.QdrantClipIndex(location, dim, fingerprint)  # type: ignore[return-value]
    if milvus_store.is_milvus_uri(vector_store):
        uri = milvus_store.client_uri(vector_store, library_root)
        return lambda dim, fingerprint: milvus_store.MilvusClipIndex(uri, dim, fingerprint)  # type: ignore[return-value]
    raise C2FError(
        f"vector store {vector_store!r}: give faiss, qdrant://[DIR | HOST:PORT], qdrant-local://DIR "
        "or milvus://[FILE.db | HOST:PORT]"
    )


class IndexSync:
    """Brings an index to exactly a given set of indexed videos, reading their feature files."""

    def __init__(
        self,
        load_features: Callable[[str], ClipFeatures],
        is_listed: Callable[[int], bool],
        make_index: Callable[[int, str], ClipIndex] | None = None,
    ) -> None:
        self.load_features = load_features
        self.is_listed = is_listed  # False once a video's catalog row is gone (removed meanwhile)
        self.make_index = make_index  # (dim, fingerprint) -> the index in its store; None: faiss ClipIndex

    def __call__(
        self,
        index: ClipIndex | None,
        indexed: Mapping[int, VideoRecord],
        vectors_of: VectorsFn,
        fingerprint: str,
        lease: WriterLease | None,
    ) -> tuple[ClipIndex | None, bool]:
        """Returns (index, whether it changed); None when both are empty. `lease`: the writer's
        (the caller holds the write lock), or None for a reader, which never writes to a store."""
        from c2f.index import ClipIndex
        from c2f.index.external_store import ExternalIndex

        if isinstance(index, ExternalIndex) or (index is None and self.make_index is not None):
            return self._sync_store(index, indexed, vectors_of, fingerprint, lease)  # type: ignore[arg-type]
        changed = False
        if index is not None:
            for key in [k for k in index.video_keys() if k not in indexed]:
                index.remove(key)
                changed = True
        batch = self._vectors([k for k in indexed if index is None or k not in index], indexed, vectors_of)
        if batch:
            if index is None:
                index = ClipIndex(next(iter(batch.values())).shape[1], fingerprint, kind="auto")
            index.add_many(batch)
            changed = True
        return index, changed

    def _sync_store(
        self,
        index: ExternalIndex | None,
        indexed: Mapping[int, VideoRecord],
        vectors_of: VectorsFn,
        fingerprint: str,
        lease: WriterLease | None,
    ) -> tuple[ClipIndex | None, bool]:
        """A store's index: the writer brings the store itself to `indexed`; a reader only narrows
        what it searches to `indexed` (videos not stored yet searched in memory)."""
        if index is None:  # no saved version yet: the store's dimension from the first readable video
            first = next(
                (v for key in indexed for v in self._vectors([key], indexed, vectors_of).values()), None
            )
            if first is None:
                return None, False
            assert self.make_index is not None
            index = self.make_index(first.shape[1], fingerprint)  # type: ignore[assignment]
            assert index is not None
        if lease is None:
            index.show_only(indexed, lambda keys: self._vectors(keys, indexed, vectors_of))
            return index, False  # type: ignore[return-value]
        index.open_for_writing(lease)
        changed = False
        for key in [k for k in index.video_keys() if k not in indexed]:
            index.remove(key)
            changed = True
        batch = self._vectors([k for k in indexed if k not in index], indexed, vectors_of)
        if batch:
            index.add_many(batch)
            changed = True
        return index, changed  # type: ignore[return-value]

    def _vectors(
        self, keys: list[int], indexed: Mapping[int, VideoRecord], vectors_of: VectorsFn
    ) -> dict[int, np.ndarray]:
        """{key: (N, d) vectors} of these videos from their feature files (an unreadable one is left out)."""
        batch: dict[int, np.ndarray] = {}
        for key in keys:
            try:
                batch[key] = vectors_of(self.load_features(indexed[key].video_id))
            except FeatureFileError as exc:
                if self.is_listed(key):  # not a concurrent removal: say so, go on
                    log.warning("video %s is left out of the search: %s", indexed[key].name, exc)
        return batch


class IndexCache:
    """Each backend's index as last brought up to a catalog snapshot, reused while neither the
    saved version nor the snapshot moves. `lock` is held by a search for as long as it reads one."""

    def __init__(
        self,
        versions: IndexVersions,
        sync: IndexSync,
        try_write_lock: Callable[[], AbstractContextManager[bool]],
    ) -> None:
        self.versions = versions
        self.sync = sync
        self.try_write_lock = try_write_lock  # yields False at once when a writer is busy
        self.lock = threading.RLock()
        self._loaded: dict[str, LoadedIndex] = {}

    def synced(
        self, fingerprint: str, vectors_of: VectorsFn, indexed: Mapping[int, VideoRecord]
    ) -> ClipIndex:
        """The index of `fingerprint` holding exactly the `indexed` videos (not empty)."""
        with self.lock:
            cached = self._loaded.get(fingerprint)
            version = self.versions.current(fingerprint)
            if cached is not None and cached.version == version and cached.synced_to is indexed:
                assert cached.index is not None
                return cached.index  # nothing moved since the last search
            if cached is None or (version and cached.version != version):
                cached = self.versions.load(fingerprint) or LoadedIndex("", None)
            index, changed = self.sync(cached.index, indexed, vectors_of, fingerprint, None)  # a reader
            assert index is not None  # indexed is not empty
            cached = LoadedIndex(cached.version, index, indexed)
            if changed:
                # Share the work with later readers, unless a writer is busy (it saves soon anyway).
                with self.try_write_lock() as got:
                    if got and self.versions.current(fingerprint) == cached.version:
                        cached.version = self.versions.save(fingerprint, index)
            self._loaded[fingerprint] = cached
            return index

    def forget(self, fingerprint: str) -> None:
        with self.lock:
            self._loaded.pop(fingerprint, None)

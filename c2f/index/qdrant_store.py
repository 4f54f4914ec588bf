"""A clip index kept in Qdrant (optional extra `c2f[qdrant]`): vectors past one machine's RAM.

Chosen by measurement over Milvus Lite and LanceDB (benchmarks/vectorstore_compare.py; BENCHMARKS.md,
"Scale out"): Qdrant stores a video as ONE point whose vector is the list of its clip vectors (a
multivector) scored by MaxSim, which for one query vector is the max over the clips: paper Eq. 3
inside the database, without a grouping pass or an over-fetch of clips. Embedded (qdrant-edge,
vectors memory-mapped from disk) it answered the exact top-10 videos in 1.0-1.5x faiss exact's time
at 250-5,000 videos, where Milvus Lite took 6.6-10.7x and LanceDB 3.6-6.8x, with 2.1 KB per clip
on disk (Milvus 3.5 KB); qdrant-client reaches a Qdrant server or cluster with the same calls.

Same interface as ClipIndex for the library and the search engine (add_many, remove, video_keys,
search_videos, clip_scores, save/load); exact, and ranked exactly like ClipIndex (the shared search
of c2f/index/external_store.py: the store's MaxSim scan proposes, float64 rescoring decides).

Where the vectors live is a URI:
  qdrant://              qdrant-edge, Qdrant's embedded engine, in the library folder (indexes/qdrant)
  qdrant:///abs/dir      qdrant-edge in that folder (relative: qdrant://rel/dir)
  qdrant://HOST:PORT     a Qdrant server or cluster through qdrant-client
  qdrant-local://DIR     qdrant-client's own local mode (Python, in RAM): the very calls that reach
                         a cluster, run without one (tests, small libraries)
Both folder modes serve ONE process (qdrant-edge and qdrant-client lock the folder; a second
process gets an error saying so); inside it, any number of threads (the library's writer and its
searches). Several processes (a `c2f index` run while the app searches) share a server:
qdrant://HOST:PORT.

A video longer than PART_CLIPS clips is stored as several points (parts), so no request grows
with a video's length; a video's score is the max over its parts. Listing, writer leases, readers
that never write, and the pointer a saved version holds: c2f/index/external_store.py.
"""

from __future__ import annotations

import atexit
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from c2f.errors import C2FError
from c2f.index.external_store import ExternalIndex, Listing

SCHEME = "qdrant://"
LOCAL_SCHEME = "qdrant-local://"
PART_CLIPS = 512  # clips per point (12.8 min of 1.5 s clips): bounds one request's size
PART_BITS = 12  # point id = video key << PART_BITS | part (4096 parts: 2M clips per video)
_PAGE = 1_000  # points per scroll page / per listing request
_REQUEST_CLIPS = 2_048  # clip vectors per upsert request (4 MB of float32)
_INSTALL = "pip install 'c2f[qdrant]' (or pip install -r requirements-qdrant.txt)"


def is_qdrant_uri(uri: str | None) -> bool:
    return bool(uri) and (str(uri).startswith(SCHEME) or str(uri).startswith(LOCAL_SCHEME))


def client_uri(store: str, library_root: Path | None = None) -> str:
    """The store's location, resolved: an absolute folder (qdrant:// or qdrant-local://) or
    http://HOST:PORT. Checked at once: a bad setting fails before any video is read."""
    if not is_qdrant_uri(store):
        raise C2FError(
            f"vector store {store!r}: give faiss, qdrant://[DIR | HOST:PORT] or qdrant-local://DIR"
        )
    scheme = LOCAL_SCHEME if store.startswith(LOCAL_SCHEME) else SCHEME
    rest = store[len(scheme) :]
    if not rest:
        if library_root is None:
            raise C2FError(f"vector store {scheme} names no folder and no library folder to keep it in")
        return scheme + str((Path(library_root) / "indexes" / "qdrant").resolve())
    if re.fullmatch(r"[\w.-]+:\d+", rest):
        if scheme == LOCAL_SCHEME:
            raise C2FError(
                f"vector store {store!r}: qdrant-local:// takes a folder; a server is qdrant://HOST:PORT"
            )
        return f"http://{rest}"
    if re.fullmatch(r"\w+://.*", rest) or ":" in rest.split("/")[0]:
        raise C2FError(f"vector store {store!r}: after {scheme} give a folder or HOST:PORT")
    return scheme + str(Path(rest).resolve())


# --- the two engines behind one set of calls --------------------------------------------------------


class _Engine(Protocol):
    """What the index needs from Qdrant, per collection. Points: (id, vector, payload)."""

    location: str

    def has(self, name: str) -> bool: ...
    def create(self, name: str, dim: int, multivector: bool) -> None: ...
    def upsert(self, name: str, points: list[tuple[int, Any, dict]]) -> None: ...
    def delete_ids(self, name: str, ids: list[int]) -> None: ...
    def delete_video(self, name: str, key: int) -> None: ...
    def scroll(self, name: str, offset: int | None) -> tuple[list[tuple[int, dict]], int | None]: ...
    def vectors(self, name: str, ids: list[int]) -> dict[int, Any]: ...
    def payloads(self, name: str, ids: list[int]) -> dict[int, dict]: ...
    def nearest(self, name: str, query: list[float], limit: int) -> list[tuple[int, float, dict]]: ...
    def flush(self, name: str) -> None: ...
    def close(self) -> None: ...


class _Edge:
    """qdrant-edge: one shard folder per collection under `folder`, vectors memory-mapped from disk."""

    def __init__(self, folder: str) -> None:
        try:
            import qdrant_edge
        except ImportError:
            raise C2FError(f"the embedded Qdrant store needs qdrant-edge-py: {_INSTALL}") from None
        self.qe, self.folder, self.location = qdrant_edge, Path(folder), folder
        self._shards: dict[str, Any] = {}

    def _path(self, name: str) -> Path:
        return self.folder / name

    def has(self, name: str) -> bool:
        return (self._path(name) / "edge_config.json").is_file()

    def _shard(self, name: str) -> Any:
        if name not in self._shards:
            try:
                self._shards[name] = self.qe.EdgeShard.load(str(self._path(name)))
            except Exception as exc:  # qdrant-edge raises bare Exceptions
                raise _open_error(self.location, exc) from None
        return self._shards[name]

    def create(self, name: str, dim: int, multivector: bool) -> None:
        qe = self.qe
        params = qe.EdgeVectorParams(
            size=dim,
            distance=qe.Distance.Dot,
            memory=qe.Memory.Cold,  # memory-mapped: the OS pages vectors in and out
            multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim) if multivector else None,
        )
        no_graph = qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10)  # exact scans only
        try:
            self._path(name).mkdir(parents=True, exist_ok=True)
            self._shards[name] = qe.EdgeShard.create(
                str(self._path(name)), qe.EdgeConfig(vectors=params, hnsw_config=no_graph)
            )
        except Exception as exc:
            raise _open_error(self.location, exc) from None

    def upsert(self, name: str, points: list[tuple[int, Any, dict]]) -> None:
        qe = self.qe
        self._shard(name).update(qe.UpdateOperation.upsert_points([qe.Point(i, v, p) for i, v, p in points]))

    def delete_ids(self, name: str, ids: list[int]) -> None:
        self._shard(name).update(self.qe.UpdateOperation.delete_points(ids))

    def delete_video(self, name: str, key: int) -> None:
        qe = self.qe
        where = qe.Filter(must=[qe.FieldCondition(key="video", match=qe.MatchValue(key))])
        self._shard(name).update(qe.UpdateOperation.delete_points_by_filter(where))

    def scroll(self, name: str, offset: int | None) -> tuple[list[tuple[int, dict]], int | None]:
        request = self.qe.ScrollRequest(offset=offset, limit=_PAGE, with_payload=True, with_vector=False)
        records, after = self._shard(name).scroll(request)
        return [(int(r.id), dict(r.payload or {})) for r in records], after

    def vectors(self, name: str, ids: list[int]) -> dict[int, Any]:
        return {int(r.id): r.vector for r in self._shard(name).retrieve(ids, False, True)}

    def payloads(self, name: str, ids: list[int]) -> dict[int, dict]:
        return {int(r.id): dict(r.payload or {}) for r in self._shard(name).retrieve(ids, True, False)}

    def nearest(self, name: str, query: list[float], limit: int) -> list[tuple[int, float, dict]]:
        qe = self.qe
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest([query]),
            params=qe.SearchParams(exact=True),
            with_payload=True,
        )
        return [(int(p.id), float(p.score), dict(p.payload or {})) for p in self._shard(name).query(request)]

    def flush(self, name: str) -> None:
        self._shard(name).flush()

    def close(self) -> None:
        for shard in self._shards.values():
            shard.close()
        self._shards.clear()


class _Client:
    """qdrant-client: a server or cluster (http://HOST:PORT), or the client's local mode (a folder)."""

    def __init__(self, location: str) -> None:
        try:
            from qdrant_client import QdrantClient, models
        except ImportError:
            raise C2FError(f"the Qdrant store needs qdrant-client: {_INSTALL}") from None
        self.models, self.location = models, location
        self.remote = location.startswith("http")
        try:
            self.client = QdrantClient(url=location) if self.remote else QdrantClient(path=location)
            self.client.get_collections()  # a server that cannot be reached fails here, not later
        except Exception as exc:  # connection and lock errors come in several types
            raise _open_error(location, exc) from None

    def has(self, name: str) -> bool:
        return self.client.collection_exists(name)

    def create(self, name: str, dim: int, multivector: bool) -> None:
        m = self.models
        params = m.VectorParams(
            size=dim,
            distance=m.Distance.DOT,
            on_disk=True,
            multivector_config=m.MultiVectorConfig(comparator=m.MultiVectorComparator.MAX_SIM)
            if multivector
            else None,
            hnsw_config=m.HnswConfigDiff(m=0),  # exact scans only: no graph to build
        )
        self.client.create_collection(name, vectors_config=params)
        if self.remote:  # deleting a video's parts filters on it (the local mode has no indexes)
            self.client.create_payload_index(name, "video", m.PayloadSchemaType.INTEGER)

    def upsert(self, name: str, points: list[tuple[int, Any, dict]]) -> None:
        structs = [self.models.PointStruct(id=i, vector=v, payload=p) for i, v, p in points]
        self.client.upsert(name, structs, wait=True)  # stored before the video is marked complete

    def delete_ids(self, name: str, ids: list[int]) -> None:
        self.client.delete(name, self.models.PointIdsList(points=ids), wait=True)

    def delete_video(self, name: str, key: int) -> None:
        m = self.models
        where = m.Filter(must=[m.FieldCondition(key="video", match=m.MatchValue(value=key))])
        self.client.delete(name, m.FilterSelector(filter=where), wait=True)

    def scroll(self, name: str, offset: int | None) -> tuple[list[tuple[int, dict]], int | None]:
        records, after = self.client.scroll(name, limit=_PAGE, offset=offset, with_payload=True)
        return [(int(r.id), dict(r.payload or {})) for r in records], after  # type: ignore[misc]

    def vectors(self, name: str, ids: list[int]) -> dict[int, Any]:
        return {int(r.id): r.vector for r in self.client.retrieve(name, ids, with_vectors=True)}  # type: ignore[misc]

    def payloads(self, name: str, ids: list[int]) -> dict[int, dict]:
        return {int(r.id): dict(r.payload or {}) for r in self.client.retrieve(name, ids, with_payload=True)}  # type: ignore[misc]

    def nearest(self, name: str, query: list[float], limit: int) -> list[tuple[int, float, dict]]:
        exact = self.models.SearchParams(exact=True) if self.remote else None  # the local mode only scans
        found = self.client.query_points(
            name, query=[query], limit=limit, with_payload=True, search_params=exact
        )
        return [(int(p.id), float(p.score), dict(p.payload or {})) for p in found.points]  # type: ignore[arg-type]

    def flush(self, name: str) -> None:
        """Nothing to do: every write waited for the store (wait=True); the local mode writes through."""

    def close(self) -> None:
        self.client.close()


def _open_error(location: str, exc: Exception) -> C2FError:
    text = str(exc)
    if "WouldBlock" in text or "already accessed" in text:
        return C2FError(
            f"the Qdrant store {location} is open in another process (an embedded store serves one "
            "process: run a Qdrant server and use qdrant://HOST:PORT to share it)"
        )
    return C2FError(f"cannot open the Qdrant store {location}: {text.splitlines()[0] if text else exc!r}")


_ENGINES: dict[str, _Engine] = {}  # one per location and process: an embedded folder admits one opener
_ENGINES_LOCK = threading.Lock()


@atexit.register
def _close_engines() -> None:
    """Close while Python is whole (the client's own finaliser fails at interpreter shutdown)."""
    for engine in _ENGINES.values():
        engine.close()


class _OneCallAtATime:
    """An engine whose calls must not overlap: qdrant-client's local mode mutates its arrays and
    SQLite file in place, qdrant-edge opens a shard once per process (two threads opening one
    failed with the folder's lock). The writer's thread and the searches' take turns."""

    def __init__(self, engine: _Engine) -> None:
        self.engine, self.location, self.lock = engine, engine.location, threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.engine, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                return method(*args, **kwargs)

        return call


def _engine(location: str) -> _Engine:
    with _ENGINES_LOCK:
        if location not in _ENGINES:
            if location.startswith(SCHEME):
                _ENGINES[location] = _OneCallAtATime(_Edge(location[len(SCHEME) :]))  # type: ignore[assignment]
            elif location.startswith(LOCAL_SCHEME):
                _ENGINES[location] = _OneCallAtATime(_Client(location[len(LOCAL_SCHEME) :]))  # type: ignore[assignment]
            else:
                _ENGINES[location] = _Client(location)
        return _ENGINES[location]


# --- the index ------------------------------------------------------------------------------------


class QdrantClipIndex(ExternalIndex):
    """Clip vectors of a library's videos in two Qdrant collections: parts (a point per up to
    PART_CLIPS clips of one video, payload video/part) and videos (a point per video, payload: its
    listing row, c2f.index.external_store.Listing); the vectors are L2-normalised on the way in,
    exactly as ClipIndex does."""

    STORE = "qdrant"

    def __init__(self, uri: str, dim: int, fingerprint: str) -> None:
        """`uri`: a location from `client_uri` (qdrant://ABS_DIR, qdrant-local://ABS_DIR, http://...),
        opened for reading (ExternalIndex.open_for_writing makes it the writer's)."""
        try:
            super().__init__(uri, dim, fingerprint)
        except C2FError:
            raise
        except Exception as exc:  # a server error, a damaged folder
            raise C2FError(f"the Qdrant store {uri}: {exc}") from None

    @property
    def _videos(self) -> str:
        return self.collection + "_videos"

    def _connect(self) -> None:
        self._db = _engine(self.uri)

    def _exists(self) -> bool:
        return self._db.has(self.collection) and self._db.has(self._videos)

    def _create(self) -> None:
        for name, dim, multi in ((self.collection, self.dim, True), (self._videos, 1, False)):
            if not self._db.has(name):
                self._db.create(name, dim, multi)

    def _scan_listing(self) -> Iterator[tuple[int, Listing]]:
        offset = None
        while True:
            rows, offset = self._db.scroll(self._videos, offset)
            yield from ((key, _listing(payload)) for key, payload in rows)
            if offset is None:
                return

    def _get_listing(self, keys: list[int]) -> dict[int, Listing]:
        out: dict[int, Listing] = {}
        for start in range(0, len(keys), _PAGE):
            payloads = self._db.payloads(self._videos, keys[start : start + _PAGE])
            out.update((key, _listing(payload)) for key, payload in payloads.items())
        return out

    def _put_listing(self, rows: dict[int, Listing]) -> None:
        points = [(key, [1.0], dict(row.__dict__)) for key, row in rows.items()]
        for start in range(0, len(points), _PAGE):
            self._db.upsert(self._videos, points[start : start + _PAGE])

    def _delete_listing(self, keys: list[int]) -> None:
        self._db.delete_ids(self._videos, keys)

    def _put_vectors(self, videos: dict[int, np.ndarray]) -> None:
        request: list[tuple[int, Any, dict]] = []
        clips = 0
        for key, v in videos.items():
            for p, start in enumerate(range(0, len(v), PART_CLIPS)):
                part = v[start : start + PART_CLIPS]
                request.append((key << PART_BITS | p, part.tolist(), {"video": key, "part": p}))
                clips += len(part)
                if clips >= _REQUEST_CLIPS:  # bounded requests (and Python lists) per call
                    self._db.upsert(self.collection, request)
                    self._keep_lease()
                    request, clips = [], 0
        if request:
            self._db.upsert(self.collection, request)

    def _delete_vectors(self, key: int) -> None:
        self._db.delete_video(self.collection, key)

    def _nearest(self, q: np.ndarray, limit: int) -> list[tuple[int, float]]:
        hits = self._db.nearest(self.collection, q.tolist(), limit)
        return [(int(payload["video"]), score) for _, score, payload in hits]

    def _fetch_vectors(self, lengths: dict[int, int]) -> dict[int, np.ndarray]:
        ids = {key: [key << PART_BITS | p for p in range(-(-n // PART_CLIPS))] for key, n in lengths.items()}
        parts = self._db.vectors(self.collection, [i for part_ids in ids.values() for i in part_ids])
        out = {}
        for key, part_ids in ids.items():
            if all(i in parts for i in part_ids):
                v = np.concatenate([np.asarray(parts[i], np.float32).reshape(-1, self.dim) for i in part_ids])
                if len(v) == lengths[key]:
                    out[key] = v
        return out

    def _flush(self) -> None:
        self._db.flush(self.collection)
        self._db.flush(self._videos)


def _listing(payload: dict) -> Listing:
    """A listing row from a videos point's payload (rows written before leases hold only clips)."""
    return Listing(
        int(payload["clips"]),
        str(payload.get("writer", "")),
        str(payload.get("lock", "")),
        float(payload.get("renewed", 0.0)),
    )

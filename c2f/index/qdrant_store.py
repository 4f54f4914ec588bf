"""A clip index kept in Qdrant (optional extra `c2f[qdrant]`): vectors past one machine's RAM.

Chosen by measurement over Milvus Lite and LanceDB (benchmarks/vectorstore_compare.py; BENCHMARKS.md,
"Scale out"): Qdrant stores a video as ONE point whose vector is the list of its clip vectors (a
multivector) scored by MaxSim, which for one query vector is the max over the clips: paper Eq. 3
inside the database, without a grouping pass or an over-fetch of clips. Embedded (qdrant-edge,
vectors memory-mapped from disk) it answered the exact top-10 videos in 1.0-1.5x faiss exact's time
at 250-5,000 videos, where Milvus Lite took 6.6-10.7x and LanceDB 3.6-6.8x, with 2.1 KB per clip
on disk (Milvus 3.5 KB); qdrant-client reaches a Qdrant server or cluster with the same calls.

Same interface as ClipIndex for the library and the search engine (add_many, remove, video_keys,
search_videos, clip_scores, save/load). Searches are exact and rank exactly like ClipIndex: the
store's float32 scan proposes every video whose max may reach the k-th best (within two float32
error bounds and the tie tolerance), and those are rescored in float64 from their stored vectors
and ordered with ClipIndex's tie rule (c2f/index/ranking.py).

Where the vectors live is a URI:
  qdrant://              qdrant-edge, Qdrant's embedded engine, in the library folder (indexes/qdrant)
  qdrant:///abs/dir      qdrant-edge in that folder (relative: qdrant://rel/dir)
  qdrant://HOST:PORT     a Qdrant server or cluster through qdrant-client
  qdrant-local://DIR     qdrant-client's own local mode (Python, in RAM): the very calls that reach
                         a cluster, run without one (tests, small libraries)
An embedded folder is locked by the one process that opens it (searching it from a second
process needs a server).

A video longer than PART_CLIPS clips is stored as several points (parts), so no request grows
with a video's length; a video's score is the max over its parts. A video is listed (`in`,
`video_keys`) only once all its parts are stored: its point in a small videos collection says
"pending" (-1 clips) while they are inserted and its count after, so a run killed mid-insert
leaves nothing half listed (the next open deletes a pending video's parts). Saved index versions
hold only a pointer (store.json) to the collections: the data lives in Qdrant.
"""

from __future__ import annotations

import atexit
import re
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from c2f.errors import C2FError
from c2f.index.clip_index import ClipIndex, ClipIndexError, VideoHit
from c2f.index.external_store import ExternalIndex
from c2f.index.ranking import first_best, order_videos_with_ties, tie_tolerance
from c2f.index.scan import float32_error

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


def _engine(location: str) -> _Engine:
    with _ENGINES_LOCK:
        if location not in _ENGINES:
            if location.startswith(SCHEME):
                _ENGINES[location] = _Edge(location[len(SCHEME) :])
            else:
                _ENGINES[location] = _Client(location.removeprefix(LOCAL_SCHEME))
        return _ENGINES[location]


# --- the index ------------------------------------------------------------------------------------


class QdrantClipIndex(ExternalIndex):
    """Clip vectors of a library's videos in two Qdrant collections: parts (a point per up to
    PART_CLIPS clips of one video, payload video/part) and videos (a point per video, payload
    clips); the vectors are L2-normalised on the way in, exactly as ClipIndex does."""

    STORE = "qdrant"

    def __init__(self, uri: str, dim: int, fingerprint: str) -> None:
        """`uri`: a location from `client_uri` (qdrant://ABS_DIR, qdrant-local://ABS_DIR, http://...)."""
        self.uri, self.dim, self.fingerprint = uri, int(dim), fingerprint
        self.collection = "c2f_" + re.sub(r"\W", "_", fingerprint)
        self._db = _engine(uri)
        try:
            for name, dim_, multi in ((self.collection, self.dim, True), (self._videos, 1, False)):
                if not self._db.has(name):
                    self._db.create(name, dim_, multi)
            self._lengths = self._read_videos()  # video key -> number of clips
            self._recent: dict[int, np.ndarray] = {}  # the last search's candidates: key -> (N, dim)
        except C2FError:
            raise
        except Exception as exc:  # a server error, a damaged folder
            raise C2FError(f"the Qdrant store {uri}: {exc}") from None

    @property
    def _videos(self) -> str:
        return self.collection + "_videos"

    def _read_videos(self) -> dict[int, int]:
        """{video key: clips} of the complete videos; the parts of pending ones (a killed run) are deleted."""
        lengths: dict[int, int] = {}
        offset = None
        while True:
            rows, offset = self._db.scroll(self._videos, offset)
            lengths.update((key, int(payload["clips"])) for key, payload in rows)
            if offset is None:
                break
        for key in [k for k, n in lengths.items() if n < 0]:
            self._db.delete_video(self.collection, key)
            self._db.delete_ids(self._videos, [key])
            del lengths[key]
        return dict(sorted(lengths.items()))

    def _mark(self, key: int, clips: int) -> None:
        self._mark_many({key: clips})

    def _mark_many(self, clips: dict[int, int]) -> None:
        """Each video's listing: its clip count, or -1 while its parts are being stored."""
        rows = [(key, [1.0], {"clips": n}) for key, n in clips.items()]
        for start in range(0, len(rows), _PAGE):
            self._db.upsert(self._videos, rows[start : start + _PAGE])

    # --- writing ---------------------------------------------------------------------------------
    # the same vector checks and normalisation as faiss's index: (N, dim) float32 unit rows
    _check_vectors = ClipIndex._check_vectors

    def add(self, video_key: int, vectors: np.ndarray) -> None:
        self.add_many({video_key: vectors})

    def add_many(self, videos: dict[int, np.ndarray]) -> None:
        """Store each video's (N, dim) clip vectors (a video already listed is refused)."""
        checked = {}
        for key, v in videos.items():
            if int(key) in self._lengths:
                raise ClipIndexError(f"video {key} is already in the index")
            checked[int(key)] = self._check_vectors(int(key), v)  # also bounds the clips (< 2**20)
        if not checked:
            return
        self._mark_many(dict.fromkeys(checked, -1))  # pending until every part of every video is in
        request: list[tuple[int, Any, dict]] = []
        clips = 0
        for key, v in checked.items():
            for p, start in enumerate(range(0, len(v), PART_CLIPS)):
                part = v[start : start + PART_CLIPS]
                request.append((key << PART_BITS | p, part.tolist(), {"video": key, "part": p}))
                clips += len(part)
                if clips >= _REQUEST_CLIPS:  # bounded requests (and Python lists) per call
                    self._db.upsert(self.collection, request)
                    request, clips = [], 0
        if request:
            self._db.upsert(self.collection, request)
        self._mark_many({key: len(v) for key, v in checked.items()})
        self._lengths.update((key, len(v)) for key, v in checked.items())

    def remove(self, video_key: int) -> None:
        key = int(video_key)
        if key not in self._lengths:
            raise ClipIndexError(f"video {key} is not in the index")
        self._db.delete_ids(self._videos, [key])  # unlisted first, then its parts
        self._db.delete_ids(self.collection, self._part_ids(key))
        del self._lengths[key]
        self._recent.pop(key, None)

    def _part_ids(self, key: int) -> list[int]:
        return [key << PART_BITS | p for p in range(-(-self._lengths[key] // PART_CLIPS))]

    # --- search ----------------------------------------------------------------------------------
    def search_videos(
        self, query: np.ndarray, k: int, approximate: bool | None = None
    ) -> list[list[VideoHit]]:
        """Top-k videos by max clip score (Eq. 3) for each query row, exact and ranked like
        ClipIndex (ties by video key). `approximate` is ignored (exact)."""
        qs, k = self._search_queries(query, k)
        if k == 0:
            return [[] for _ in qs]
        return [self._final_ranking(self._candidates(q, k), q, k) for q in qs]

    def _candidates(self, q: np.ndarray, k: int) -> list[int]:
        """Every listed video whose exact max may be in the top k or tie with it: the store's
        float32 scores are within e32 of the exact ones, so nothing scoring below the k-th best
        minus 2 e32 and the tie tolerance can be. Parts come best first; the limit grows until
        the last one returned is below that floor (or there are no more)."""
        margin = 2 * float32_error(self.dim) + tie_tolerance(self.dim)
        limit = k + 8
        while True:
            hits = self._db.nearest(self.collection, q.tolist(), limit)
            best: dict[int, float] = {}
            for _, score, payload in hits:  # a video's first part in the list is its best
                key = int(payload["video"])
                if key in self._lengths:  # not a pending video of a writer, nor one being removed
                    best.setdefault(key, score)
            scores = sorted(best.values(), reverse=True)
            floor = scores[k - 1] - margin if len(scores) >= k else -np.inf
            if len(hits) < limit or hits[-1][1] < floor:
                return [key for key, score in best.items() if score >= floor]
            limit *= 4

    def _vectors(self, keys: list[int]) -> dict[int, np.ndarray]:
        """{video key: (N, dim) float32 stored vectors} of the given videos. The last search's are
        kept: the search engine asks next for the clip scores of the videos it found."""
        wanted = [key for key in keys if key not in self._recent]
        parts = self._db.vectors(self.collection, [i for key in wanted for i in self._part_ids(key)])
        out = {key: self._recent[key] for key in keys if key in self._recent}
        for key in wanted:
            try:
                out[key] = np.concatenate([np.asarray(parts[i], np.float32) for i in self._part_ids(key)])
            except KeyError:
                raise ClipIndexError(f"video {key}: parts missing from the Qdrant store {self.uri}") from None
        return out

    def _final_ranking(self, candidates: list[int], q: np.ndarray, k: int) -> list[VideoHit]:
        """float64 scores of every clip of the candidates (one product), ranked with ClipIndex's
        tie rule; the candidates' vectors are kept for the clip_scores calls that follow."""
        tie = tie_tolerance(self.dim)
        self._recent = vectors = self._vectors(candidates)
        lengths = [len(vectors[key]) for key in candidates]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        rows = np.concatenate([vectors[key] for key in candidates]).astype(np.float64)  # (R, dim)
        s64 = rows @ q.astype(np.float64)  # (R,) exact products, d additions
        maxima = np.maximum.reduceat(s64, starts)
        order = order_videos_with_ties(maxima, np.array(candidates, np.int64), tie)[:k]
        return [
            VideoHit(
                candidates[i], float(maxima[i]), first_best(s64[starts[i] : starts[i] + lengths[i]], tie)
            )
            for i in order
        ]

    def clip_scores(self, query: np.ndarray, video_key: int) -> np.ndarray:
        """(N,) inner products of the (normalised) query with every clip of one video."""
        q = self._prep_query(query)[0]
        key = int(video_key)
        if key not in self._lengths:
            raise ClipIndexError(f"video {key} is not in the index")
        return self._vectors([key])[key].astype(np.float64) @ q.astype(np.float64)

    # --- files (save/load: a pointer to the collections, ExternalIndex) -----------------------
    def _flush(self) -> None:
        self._db.flush(self.collection)
        self._db.flush(self._videos)

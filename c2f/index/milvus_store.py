"""A clip index kept in Milvus (optional extra `c2f[milvus]`): vectors past one machine's RAM.

Same interface as ClipIndex for the library and the search engine (add_many, remove, video_keys,
search_videos, clip_scores, save/load). Eq. 3's max over a video's clips is Milvus's grouping
search (group by the video field, one hit per group) on an exact FLAT inner-product index, so the
top-k videos are the exact ones (tests compare them with the exact faiss search).

Where the vectors live is a URI:
  milvus://                   Milvus Lite, a file in the library folder (indexes/milvus.db)
  milvus:///abs/path/x.db     Milvus Lite, that file (relative paths: milvus://rel/x.db)
  milvus://HOST:PORT          a Milvus server or cluster (the same client; data on its nodes)

A video is listed (`in`, `video_keys`) only once all its clips are stored: its row in a small
videos collection says "pending" (-1 clips) while they are inserted and its count after, so a run
killed mid-insert leaves nothing half listed (the next open deletes a pending video's clips). Saved index versions hold only a pointer
(store.json) to the collection: the data lives in Milvus.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from c2f.errors import C2FError
from c2f.index.clip_index import ClipIndexError, VideoHit
from c2f.index.external_store import ExternalIndex

SCHEME = "milvus://"
CLIP_BITS = 24  # clip row id = video key << CLIP_BITS | clip number (16M clips per video)
_PAGE = 10_000  # rows per query page (Milvus caps one query's result)


def is_milvus_uri(uri: str | None) -> bool:
    return bool(uri) and str(uri).startswith(SCHEME)


def client_uri(store: str, library_root: Path | None = None) -> str:
    """What MilvusClient connects to: a local file (Milvus Lite) or http://HOST:PORT."""
    if not is_milvus_uri(store):
        raise C2FError(f"vector store {store!r}: give faiss or milvus://[path.db | HOST:PORT]")
    rest = store[len(SCHEME) :]
    if not rest:
        if library_root is None:
            raise C2FError("vector store milvus:// names no file and no library folder to keep it in")
        return str(Path(library_root) / "indexes" / "milvus.db")
    if rest.endswith(".db"):
        return str(Path(rest).resolve())
    if re.fullmatch(r"[\w.-]+:\d+", rest):
        return f"http://{rest}"
    raise C2FError(f"vector store {store!r}: after milvus:// give a file ending in .db or HOST:PORT")


def _connect(uri: str) -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise C2FError(
            "the Milvus vector store needs pymilvus: pip install 'c2f[milvus]' "
            "(or pip install -r requirements-milvus.txt)"
        ) from None
    if not uri.startswith("http"):
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    try:
        return MilvusClient(uri)
    except Exception as exc:  # pymilvus raises its own types for unreachable servers
        raise C2FError(f"cannot open the Milvus store {uri}: {exc}") from None


class MilvusClipIndex(ExternalIndex):
    """Clip vectors of a library's videos in two Milvus collections: clips (id, video, clip, vec)
    and videos (id = video key, clips); the vectors are L2-normalised on the way in."""

    STORE = "milvus"

    def __init__(self, uri: str, dim: int, fingerprint: str) -> None:
        self.uri, self.dim, self.fingerprint = uri, int(dim), fingerprint
        self.collection = "c2f_" + re.sub(r"\W", "_", fingerprint)
        self._client = _connect(uri)
        self._ensure_collections()
        self._lengths = self._read_videos()  # video key -> number of clips

    # --- collections -----------------------------------------------------------------------------
    def _ensure_collections(self) -> None:
        from pymilvus import DataType

        c = self._client
        if not c.has_collection(self.collection):
            schema = c.create_schema(auto_id=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("video", DataType.INT64)
            schema.add_field("clip", DataType.INT64)
            schema.add_field("vec", DataType.FLOAT_VECTOR, dim=self.dim)
            params = c.prepare_index_params()
            params.add_index("vec", index_type="FLAT", metric_type="IP")  # exact
            c.create_collection(self.collection, schema=schema, index_params=params)
        if not c.has_collection(self._videos):
            schema = c.create_schema(auto_id=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("clips", DataType.INT64)
            schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field
            params = c.prepare_index_params()
            params.add_index("unused", index_type="FLAT", metric_type="L2")
            c.create_collection(self._videos, schema=schema, index_params=params)
        c.load_collection(self.collection)
        c.load_collection(self._videos)

    @property
    def _videos(self) -> str:
        return self.collection + "_videos"

    def _read_videos(self) -> dict[int, int]:
        """{video key: clips} of the complete videos; the clips of pending ones (a killed run) are deleted."""
        lengths: dict[int, int] = {}
        last = -1
        while True:  # paged by key: one query's result is capped
            rows = self._client.query(
                self._videos, filter=f"id > {last}", output_fields=["id", "clips"], limit=_PAGE
            )
            if not rows:
                break
            for r in rows:
                lengths[int(r["id"])] = int(r["clips"])
            last = max(int(r["id"]) for r in rows)
        for key in [k for k, n in lengths.items() if n < 0]:
            self._client.delete(self.collection, filter=f"video == {key}")
            self._client.delete(self._videos, ids=[key])
            del lengths[key]
        return dict(sorted(lengths.items()))

    def _mark(self, key: int, clips: int) -> None:
        self._client.upsert(self._videos, [{"id": key, "clips": clips, "unused": [0.0, 0.0]}])

    # --- writing ---------------------------------------------------------------------------------
    def add(self, video_key: int, vectors: np.ndarray) -> None:
        self.add_many({video_key: vectors})

    def add_many(self, videos: dict[int, np.ndarray]) -> None:
        """Store each video's (N, dim) clip vectors (a video already listed is refused)."""
        for key, v in videos.items():
            if int(key) in self._lengths:
                raise ClipIndexError(f"video {key} is already in the index")
            if v.ndim != 2 or v.shape[1] != self.dim or len(v) == 0:
                raise ClipIndexError(f"video {key}: expected (N, {self.dim}) vectors, got {v.shape}")
            if len(v) >= 1 << CLIP_BITS:
                raise ClipIndexError(f"video {key}: {len(v)} clips is more than the store takes")
        for key, v in videos.items():
            key = int(key)
            self._mark(key, -1)  # pending until every clip is in
            v = np.asarray(v, np.float32)
            v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)  # (N, dim)
            for start in range(0, len(v), _PAGE):
                rows = [
                    {"id": (key << CLIP_BITS) | c, "video": key, "clip": c, "vec": v[c]}
                    for c in range(start, min(start + _PAGE, len(v)))
                ]
                self._client.insert(self.collection, rows)
            self._mark(key, len(v))
            self._lengths[key] = len(v)

    def remove(self, video_key: int) -> None:
        key = int(video_key)
        if key not in self._lengths:
            raise ClipIndexError(f"video {key} is not in the index")
        self._client.delete(self._videos, ids=[key])  # unlisted first, then its clips
        self._client.delete(self.collection, filter=f"video == {key}")
        del self._lengths[key]

    # --- search ----------------------------------------------------------------------------------
    def search_videos(self, query: np.ndarray, k: int, approximate: bool | None = None) -> list[list[VideoHit]]:
        """Top-k videos by max clip score (Eq. 3) for each query row: Milvus's grouping search,
        one best clip per video, on the exact FLAT index. `approximate` is ignored (exact)."""
        qs, k = self._search_queries(query, k)
        if k == 0:
            return [[] for _ in qs]
        results = self._client.search(
            self.collection,
            data=[q.tolist() for q in qs],
            anns_field="vec",
            limit=k,
            group_by_field="video",
            output_fields=["video", "clip"],
            search_params={"metric_type": "IP"},
        )
        out = []
        for hits in results:
            found = [VideoHit(int(h["entity"]["video"]), float(h["distance"]), int(h["entity"]["clip"])) for h in hits]
            found = [h for h in found if h.video_key in self._lengths]  # removed meanwhile
            out.append(sorted(found, key=lambda h: (-h.score, h.video_key)))
        return out

    def clip_scores(self, query: np.ndarray, video_key: int) -> np.ndarray:
        """(N,) inner products of the (normalised) query with every clip of one video."""
        q = self._prep_query(query)[0]
        key = int(video_key)
        if key not in self._lengths:
            raise ClipIndexError(f"video {key} is not in the index")
        vectors = np.zeros((self._lengths[key], self.dim), np.float32)
        for start in range(0, len(vectors), _PAGE):
            rows = self._client.query(
                self.collection,
                filter=f"video == {key} and clip >= {start} and clip < {start + _PAGE}",
                output_fields=["clip", "vec"],
                limit=_PAGE,
            )
            for r in rows:
                vectors[int(r["clip"])] = r["vec"]
        return vectors.astype(np.float64) @ q.astype(np.float64)

    # --- files (save/load: a pointer to the collections, ExternalIndex) -----------------------
    def _flush(self) -> None:
        self._client.flush(self.collection)
        self._client.flush(self._videos)

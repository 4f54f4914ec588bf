"""A clip index kept in Milvus (optional extra `c2f[milvus]`): vectors past one machine's RAM.

Same interface as ClipIndex for the library and the search engine (add_many, remove, video_keys,
search_videos, clip_scores, save/load). Eq. 3's max over a video's clips is Milvus's grouping
search (group by the video field, one hit per group) on an exact FLAT inner-product index; its
float32 hits only propose videos: the shared search of c2f/index/external_store.py asks for more
groups until k listed videos are found and nothing left out can reach them, rescores the
candidates in float64 and ranks them with ClipIndex's tie rule, so the top-k videos, their order
and scores are faiss's. Every read is Strong (it sees every write acknowledged before it), and
the listing is read through a query iterator (a cursor: no order of ids assumed).

Milvus Lite (3.2) is not Strong while it flushes: a flush swaps in an empty memtable before the
segment holding the old one's rows is in, and a read in between (another client's, through its
server) misses those rows. Its writer therefore flushes the vectors before it lists a video
complete, and the listing before it deletes a listed video's vectors: what a reader trusts is
then in segments, which every read sees. Its grouping search groups only its best 10 * limit
clips, so an answer of fewer videos than asked is no proof that none are left.

Where the vectors live is a URI:
  milvus://                   Milvus Lite, a folder in the library folder (indexes/milvus.db)
  milvus:///abs/path/x.db     Milvus Lite, that folder (relative paths: milvus://rel/x.db)
  milvus://HOST:PORT          a Milvus server or cluster (the same client; data on its nodes), or
                              Milvus Lite's own server: milvus-lite server --data-dir X.db --port P
Milvus Lite on a .db serves ONE process (it locks the folder; a second process gets an error
saying so); several processes share a server, e.g. `milvus-lite server` on that folder.

Listing (a collection of a row per video: clips, -1 while pending, and the writer's lease), writer
leases, readers that never write, and the pointer a saved version holds: external_store.py.
"""

from __future__ import annotations

import fcntl
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from c2f.errors import C2FError
from c2f.index.external_store import ExternalIndex, Listing

SCHEME = "milvus://"
CLIP_BITS = 24  # clip row id = video key << CLIP_BITS | clip number (ClipIndex takes < 2**20 clips)
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


class _IteratorWithoutSessionTs(logging.Filter):
    """Milvus Lite gives a query iterator no session timestamp; pymilvus then warns and uses its
    own clock, which is what a Strong read wants: the warning says nothing to a user."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("failed to get mvccTs")


logging.getLogger("pymilvus.client.iterator.query_iterator").addFilter(_IteratorWithoutSessionTs())


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
        if not uri.startswith("http") and _locked(Path(uri) / "LOCK"):
            raise C2FError(
                f"the Milvus Lite store {uri} is open in another process (Milvus Lite serves one "
                f"process: run `milvus-lite server --data-dir {uri} --port 19530` and use "
                "milvus://127.0.0.1:19530 to share it)"
            ) from None
        raise C2FError(f"cannot open the Milvus store {uri}: {exc}") from None


def _locked(lock_file: Path) -> bool:
    """Whether another process holds Milvus Lite's flock on its data folder."""
    try:
        with open(lock_file, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


STRONG = {"consistency_level": "Strong"}  # every read sees every write acknowledged before it


class MilvusClipIndex(ExternalIndex):
    """Clip vectors of a library's videos in two Milvus collections: clips (id, video, clip, vec)
    and listing (id = video key, clips, writer, lock, renewed); the vectors are L2-normalised on
    the way in."""

    STORE = "milvus"
    _MAX_LIMIT = 16_384  # Milvus's cap on one search's results
    _SHORT_ANSWER_HOLDS_ALL = False  # Milvus Lite groups its best 10 * limit clips only

    @property
    def _listing(self) -> str:
        return self.collection + "_listing"

    @property
    def _old_listing(self) -> str:
        return self.collection + "_videos"  # before writer leases: (id, clips)

    def _connect(self) -> None:
        self._client = _connect(self.uri)
        self._loaded = False
        # Milvus Lite, a local file or its server: reads miss rows while it flushes (see above)
        self._lite = str(self._client.get_server_version()).startswith("milvus_lite")

    def _exists(self) -> bool:
        c = self._client
        if not (c.has_collection(self.collection) and c.has_collection(self._listing)):
            return False
        if c.has_collection(self._old_listing):
            return False  # not moved to the new listing yet: read nothing from it
        if not self._loaded:
            c.load_collection(self.collection)
            c.load_collection(self._listing)
            self._loaded = True
        return True

    def _create(self) -> None:
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
            c.create_collection(self.collection, schema=schema, index_params=params, **STRONG)
        if not c.has_collection(self._listing):
            schema = c.create_schema(auto_id=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("clips", DataType.INT64)
            schema.add_field("writer", DataType.VARCHAR, max_length=4096)
            schema.add_field("lock", DataType.VARCHAR, max_length=4096)
            schema.add_field("renewed", DataType.DOUBLE)
            schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field
            params = c.prepare_index_params()
            params.add_index("unused", index_type="FLAT", metric_type="L2")
            c.create_collection(self._listing, schema=schema, index_params=params, **STRONG)
        c.load_collection(self.collection)
        c.load_collection(self._listing)
        self._loaded = True
        if c.has_collection(self._old_listing):  # its rows copied (pending ones have no lease: expired)
            c.load_collection(self._old_listing)
            old = self._iterate(self._old_listing, ["id", "clips"])
            self._put_listing({int(r["id"]): Listing(int(r["clips"])) for r in old})
            c.drop_collection(self._old_listing)

    def _iterate(self, collection: str, fields: list[str]) -> Iterator[dict]:
        it = self._client.query_iterator(collection, batch_size=_PAGE, output_fields=fields, **STRONG)
        try:
            while rows := it.next():
                yield from rows
        finally:
            it.close()

    def _scan_listing(self) -> Iterator[tuple[int, Listing]]:
        for r in self._iterate(self._listing, ["id", *_LISTING_FIELDS]):
            yield int(r["id"]), _row_listing(r)

    def _get_listing(self, keys: list[int]) -> dict[int, Listing]:
        out: dict[int, Listing] = {}
        for start in range(0, len(keys), _PAGE):
            rows = self._client.get(
                self._listing, ids=keys[start : start + _PAGE], output_fields=_LISTING_FIELDS, **STRONG
            )
            out.update((int(r["id"]), _row_listing(r)) for r in rows)
        return out

    def _put_listing(self, rows: dict[int, Listing]) -> None:
        data = [{"id": key, **row.__dict__, "unused": [0.0, 0.0]} for key, row in rows.items()]
        for start in range(0, len(data), _PAGE):
            self._client.upsert(self._listing, data[start : start + _PAGE])

    def _delete_listing(self, keys: list[int]) -> None:
        self._client.delete(self._listing, ids=keys)

    def _put_vectors(self, videos: dict[int, np.ndarray]) -> None:
        for key, v in videos.items():
            for start in range(0, len(v), _PAGE):
                rows = [
                    {"id": (key << CLIP_BITS) | c, "video": key, "clip": c, "vec": v[c]}
                    for c in range(start, min(start + _PAGE, len(v)))
                ]
                self._client.upsert(self.collection, rows)  # an upsert: a retried video never doubles
                self._keep_lease()

    def _delete_vectors(self, key: int) -> None:
        self._client.delete(self.collection, filter=f"video == {int(key)}")

    def _nearest(self, q: np.ndarray, limit: int) -> list[tuple[int, float]]:
        (hits,) = self._client.search(
            self.collection,
            data=[q.tolist()],
            anns_field="vec",
            limit=limit,
            group_by_field="video",
            output_fields=["video"],
            search_params={"metric_type": "IP"},
            **STRONG,
        )
        return [(int(h["entity"]["video"]), float(h["distance"])) for h in hits]

    def _fetch_vectors(self, lengths: dict[int, int]) -> dict[int, np.ndarray]:
        ids = [(key << CLIP_BITS) | c for key, n in lengths.items() for c in range(n)]
        found: dict[int, Any] = {}
        for start in range(0, len(ids), _PAGE):
            rows = self._client.get(
                self.collection, ids=ids[start : start + _PAGE], output_fields=["vec"], **STRONG
            )
            found.update((int(r["id"]), r["vec"]) for r in rows)
        out = {}
        for key, n in lengths.items():
            row_ids = [(key << CLIP_BITS) | c for c in range(n)]
            if all(i in found for i in row_ids):
                out[key] = np.asarray([found[i] for i in row_ids], np.float32).reshape(n, self.dim)
        return out

    def _flush(self) -> None:
        self._client.flush(self.collection)
        self._client.flush(self._listing)

    def _settle_vectors(self) -> None:
        """Milvus Lite: a flush puts the rows written so far into segments, which every read sees
        (nothing to flush: nothing done). A Milvus server's Strong reads see every acknowledged
        write, and a flush there seals segments (costly, not to be done per video): nothing."""
        if self._lite:
            self._client.flush(self.collection)

    def _settle_listing(self) -> None:
        if self._lite:
            self._client.flush(self._listing)


_LISTING_FIELDS = ["clips", "writer", "lock", "renewed"]


def _row_listing(row: dict) -> Listing:
    return Listing(int(row["clips"]), str(row["writer"]), str(row["lock"]), float(row["renewed"]))

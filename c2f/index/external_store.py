"""What the indexes kept in an external vector store (qdrant_store, milvus_store) share: the listing
of complete videos, who may write and clean it, the exact search on top of the store's scan, and
the pointer a saved index version holds instead of the vectors.

Readers and the writer. A store may be shared (a server; one process's threads), so an index object
writes only once `open_for_writing` gave it the lease of the library's writer (the holder of its
write lock, c2f/library/lease.py); an object opened otherwise is a reader and never writes. A video
is listed only once all its vectors are stored and settled (seen by every read, `_settle_vectors`):
its listing row says "pending" (-1 clips), with the writer's id, lock and the time it last renewed
its lease, while they are inserted (or deleted), and its clip count after. A removal settles the
pending row before it deletes the vectors. So a reader that finds a video listed complete finds
all its vectors, and one that finds some missing finds the video no longer listed. A writer renews
its rows every LEASE_RENEW_S while it writes.
Pending rows are cleaned (their vectors, then the row) only by a writer opening the store, and
only those of its own lock (the lock proves their writer is gone: a killed run) or whose lease
expired (LEASE_EXPIRY_S without renewal: a writer of another library that shares the store).

A reader searches exactly a catalog snapshot (`show_only`): the snapshot's videos that the store
lists complete, plus, in memory, the snapshot's videos the store does not list yet (their vectors
from the feature files, as a faiss reader does).

Exact search: the store's float32 scan proposes every video whose max may reach the k-th best
(within two float32 error bounds and the tie tolerance; the scan is asked for more until its last
hit is below that floor or it found every searched video), and those are rescored in float64 from
their stored vectors and ordered with ClipIndex's tie rule (c2f/index/ranking.py): the same
videos, order and scores as faiss.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from c2f.index.clip_index import ClipIndex, ClipIndexError, VideoHit
from c2f.index.ranking import first_best, order_videos_with_ties, tie_tolerance
from c2f.index.scan import float32_error

if TYPE_CHECKING:
    from typing_extensions import Self

POINTER = "store.json"
LEASE_RENEW_S = 30.0  # a writer renews its pending rows this often while it writes
LEASE_EXPIRY_S = 600.0  # pending rows of another lock not renewed for this long are a dead writer's


class WriterLease(Protocol):
    """Who writes to a store: `lock` names the library write lock the writer holds (host and path),
    `writer` the holder (its lock, process id and a tag). Made by c2f.library.lease.writer_lease."""

    @property
    def lock(self) -> str: ...
    @property
    def writer(self) -> str: ...


@dataclass(frozen=True)
class Listing:
    """A video's listing row: its clip count (-1: pending), and who wrote it and when (unix time)."""

    clips: int
    writer: str = ""
    lock: str = ""
    renewed: float = 0.0

    @property
    def complete(self) -> bool:
        return self.clips >= 0

    def expired(self, now: float) -> bool:
        return now - self.renewed > LEASE_EXPIRY_S


class _Vanished(Exception):  # not an error: videos the writer removed during a search
    def __init__(self, keys: list[int]) -> None:
        self.keys = keys


class ExternalIndex:
    """The part of an index in an external store that does not depend on the store. A store
    implements the primitives below the line `store primitives`."""

    STORE: str  # the store's name in the pointer
    _MAX_LIMIT: int | None = None  # the most hits one store request returns (None: no cap)
    # Whether a `_nearest` answer shorter than its limit holds every stored video (Qdrant); Milvus
    # Lite groups only its best 10 * limit clips, so a short answer may leave videos out.
    _SHORT_ANSWER_HOLDS_ALL = True

    def __init__(self, uri: str, dim: int, fingerprint: str) -> None:
        """Opens the store for reading: nothing is written (see `open_for_writing`)."""
        self.uri, self.dim, self.fingerprint = uri, int(dim), fingerprint
        self.collection = "c2f_" + re.sub(r"\W", "_", fingerprint)
        self.writer: WriterLease | None = None
        self._connect()
        self._stored = self._read_complete()  # {video key: clips} listed complete in the store
        self._lengths = dict(self._stored)  # those this index searches
        self._overlay: dict[int, np.ndarray] = {}  # a reader's snapshot videos not stored yet: (N, dim)
        self._recent: dict[int, np.ndarray] = {}  # the last search's candidates: key -> (N, dim)
        self._pending: set[int] = set()  # rows this writer holds pending now
        self._renewed_at = 0.0

    # --- store primitives ------------------------------------------------------------------------
    def _connect(self) -> None:
        """Reach the store (nothing created)."""
        raise NotImplementedError

    def _exists(self) -> bool:
        """Whether the collections exist (a reader of a store never written to lists nothing)."""
        raise NotImplementedError

    def _create(self) -> None:
        """Create the collections that are missing (a writer)."""
        raise NotImplementedError

    def _scan_listing(self) -> Iterator[tuple[int, Listing]]:
        """Every listing row, by a cursor of the store."""
        raise NotImplementedError

    def _get_listing(self, keys: list[int]) -> dict[int, Listing]:
        """The listing rows of these videos (absent ones left out)."""
        raise NotImplementedError

    def _put_listing(self, rows: dict[int, Listing]) -> None:
        raise NotImplementedError

    def _delete_listing(self, keys: list[int]) -> None:
        raise NotImplementedError

    def _put_vectors(self, videos: dict[int, np.ndarray]) -> None:
        """Store every video's (N, dim) unit float32 clip vectors, in bounded requests, calling
        `_keep_lease` between them."""
        raise NotImplementedError

    def _delete_vectors(self, key: int) -> None:
        """Delete every stored vector of one video (whatever its listing says)."""
        raise NotImplementedError

    def _nearest(self, q: np.ndarray, limit: int) -> list[tuple[int, float]]:
        """Up to `limit` (video key, store score) best first, for the unit query q (dim,); a
        video may come more than once (its best first), listed or not. A video left out scores
        at most the last hit."""
        raise NotImplementedError

    def _fetch_vectors(self, lengths: dict[int, int]) -> dict[int, np.ndarray]:
        """{key: (N, dim) float32} of videos with N = lengths[key] clips; incomplete ones left out."""
        raise NotImplementedError

    def _flush(self) -> None:
        """Make every write so far durable in the store (before a pointer to it is saved)."""
        raise NotImplementedError

    def _settle_vectors(self) -> None:
        """Make the vectors written so far seen by every later read, even one that overlaps the
        store's own upkeep (called before a video is listed complete). Nothing to do for a store
        whose reads see every acknowledged write."""

    def _settle_listing(self) -> None:
        """The same for the listing rows written so far (called before a listed video's vectors
        are deleted)."""

    # --- listing ---------------------------------------------------------------------------------
    @property
    def num_videos(self) -> int:
        return len(self._lengths) + len(self._overlay)

    @property
    def num_clips(self) -> int:
        return sum(self._lengths.values()) + sum(len(v) for v in self._overlay.values())

    def __contains__(self, video_key: int) -> bool:
        return int(video_key) in self._lengths or int(video_key) in self._overlay

    def video_keys(self) -> list[int]:
        return sorted([*self._lengths, *self._overlay])

    def _read_complete(self) -> dict[int, int]:
        if not self._exists():
            return {}
        return dict(sorted((key, row.clips) for key, row in self._scan_listing() if row.complete))

    def show_only(
        self, keys: Collection[int], vectors_of: Callable[[list[int]], dict[int, np.ndarray]]
    ) -> None:
        """Search exactly the videos `keys` (a reader's catalog snapshot), writing nothing: those the
        store lists complete, and the others in memory from `vectors_of` (missing keys -> (N, dim)
        vectors; a key it leaves out is not searched)."""
        if self.writer is not None:
            raise ClipIndexError("the writer's index holds the whole store: searches open their own")
        unknown = [k for k in keys if k not in self._stored]
        if unknown and self._exists():  # stored since this index was opened?
            self._stored.update(
                (k, row.clips) for k, row in self._get_listing(unknown).items() if row.complete
            )
        self._lengths = {k: self._stored[k] for k in keys if k in self._stored}
        missing = [k for k in keys if k not in self._stored]
        overlay = {k: self._overlay[k] for k in missing if k in self._overlay}
        new = vectors_of([k for k in missing if k not in overlay])
        overlay.update((k, self._check_vectors(k, v)) for k, v in new.items())
        self._overlay = overlay

    # --- writing ---------------------------------------------------------------------------------
    # the same vector checks and normalisation as faiss's index: (N, dim) float32 unit rows
    _check_vectors = ClipIndex._check_vectors

    def open_for_writing(self, lease: WriterLease) -> None:
        """Make this the writer's index (the caller holds the library's write lock): the
        collections are created if missing, and pending rows of its lock or of expired leases are
        cleaned. Again with the same lease: nothing to do."""
        if self.writer == lease:
            return
        self._create()
        rows = dict(self._scan_listing())
        now = time.time()
        for key, row in rows.items():
            if not row.complete and (row.lock == lease.lock or row.expired(now)):
                self._delete_vectors(key)  # then the row: killed in between, it is cleaned again
                self._delete_listing([key])
        self._settle_vectors()  # what a writer of an older c2f listed without settling it
        self._settle_listing()
        self.writer = lease
        self._stored = dict(sorted((k, row.clips) for k, row in rows.items() if row.complete))
        self._lengths, self._overlay, self._recent = dict(self._stored), {}, {}

    def _writing(self) -> WriterLease:
        if self.writer is None:
            raise ClipIndexError(
                f"the store {self.uri} was opened for reading: only the library's writer (holding its "
                "write lock) changes it"
            )
        return self.writer

    def _mark_pending(self) -> None:
        """This writer's pending rows, with its lease renewed now."""
        lease, now = self._writing(), time.time()
        self._put_listing({k: Listing(-1, lease.writer, lease.lock, now) for k in sorted(self._pending)})
        self._renewed_at = now

    def _keep_lease(self) -> None:
        """Renew this writer's pending rows when LEASE_RENEW_S passed (called between requests)."""
        if self._pending and time.time() - self._renewed_at >= LEASE_RENEW_S:
            self._mark_pending()

    def add(self, video_key: int, vectors: np.ndarray) -> None:
        self.add_many({video_key: vectors})

    def add_many(self, videos: dict[int, np.ndarray]) -> None:
        """Store each video's (N, dim) clip vectors, then list it (a video already listed is refused)."""
        lease = self._writing()
        checked = {}
        for key, v in videos.items():
            if int(key) in self._stored:
                raise ClipIndexError(f"video {key} is already in the index")
            checked[int(key)] = self._check_vectors(int(key), v)
        if not checked:
            return
        for key, row in self._get_listing(list(checked)).items():
            if row.lock != lease.lock and (row.complete or not row.expired(time.time())):
                raise ClipIndexError(
                    f"video {key} is in the store {self.uri} already, written by {row.writer or 'another writer'}"
                )
            self._delete_vectors(key)  # what an earlier try left
        self._pending = set(checked)
        try:
            self._mark_pending()  # pending until every vector of every video is in
            self._put_vectors(checked)
            self._settle_vectors()  # before a reader may trust them: every read then sees them all
            for key, row in self._get_listing(list(checked)).items():
                if row.writer != lease.writer:  # another library's writer took over an expired lease
                    raise ClipIndexError(
                        f"video {key}: {row.writer or 'another writer'} took over this writer's lease on "
                        f"the store {self.uri} while it wrote (renewed less than every {LEASE_EXPIRY_S:.0f} s)"
                    )
            now = time.time()
            self._put_listing({k: Listing(len(v), lease.writer, lease.lock, now) for k, v in checked.items()})
        finally:
            self._pending = set()
        for key, v in checked.items():
            self._stored[key] = self._lengths[key] = len(v)

    def remove(self, video_key: int) -> None:
        """Unlist a video and delete its vectors (a writer killed meanwhile leaves it pending)."""
        self._writing()
        key = int(video_key)
        if key not in self._stored:
            raise ClipIndexError(f"video {key} is not in the index")
        self._pending = {key}
        try:
            self._mark_pending()
            self._settle_listing()  # a reader that misses a vector then sees the video pending or gone
            self._delete_vectors(key)
            self._delete_listing([key])
        finally:
            self._pending = set()
        del self._stored[key]
        self._lengths.pop(key, None)
        self._recent.pop(key, None)

    # --- search ----------------------------------------------------------------------------------
    # the same query checks as faiss's index (shape, finite, not zero), normalised: (B, dim)
    _prep_query = ClipIndex._prep_query

    def search_videos(
        self, query: np.ndarray, k: int, approximate: bool | None = None
    ) -> list[list[VideoHit]]:
        """Top-k videos by max clip score (Eq. 3) for each query row, exact and ranked like
        ClipIndex (ties by video key). `approximate` is ignored (exact)."""
        if k < 1:
            raise ClipIndexError(f"k must be at least 1, not {k}")
        return [self._search_one(q, k) for q in self._prep_query(query)]

    def _search_one(self, q: np.ndarray, k: int) -> list[VideoHit]:
        while True:
            top = min(k, self.num_videos)
            if top == 0:
                return []
            try:
                return self._final_ranking(self._candidates(q, top), q, top)
            except _Vanished as gone:  # removed by the writer since this index read its listing
                for key in gone.keys:
                    self._stored.pop(key, None)
                    self._lengths.pop(key, None)

    def _candidates(self, q: np.ndarray, k: int) -> list[int]:
        """Every searched video whose exact max may be in the top k or tie with it: the store's
        float32 scores are within e32 of the exact ones, so nothing scoring below the k-th best
        minus 2 e32 and the tie tolerance can be (the k-th best of the store's videos alone is
        no better than that of all, so the videos in memory are simply added). The store's hits
        come best first and a video left out scores at most the last one: the limit grows until
        that one is below the floor or every searched video was found (or, where a short answer
        holds every stored video, none are left; where the store answers no deeper, every
        searched video is a candidate)."""
        margin = 2 * float32_error(self.dim) + tie_tolerance(self.dim)
        in_memory = list(self._overlay)
        if not self._lengths:
            return in_memory
        limit = k + 8
        while True:
            hits = self._nearest(q, limit)
            best: dict[int, float] = {}
            for key, score in hits:  # a video's first hit is its best
                if key in self._lengths:  # not a pending video of a writer, nor one removed
                    best.setdefault(key, score)
            scores = sorted(best.values(), reverse=True)
            floor = scores[k - 1] - margin if len(scores) >= k else -np.inf
            below = bool(hits) and hits[-1][1] < floor
            all_left = len(hits) < limit and self._SHORT_ANSWER_HOLDS_ALL
            if below or all_left or len(best) == len(self._lengths):
                return [key for key, score in best.items() if score >= floor] + in_memory
            if self._MAX_LIMIT is not None and limit >= self._MAX_LIMIT:
                return list(self._lengths) + in_memory  # the store answers no deeper: rescore them all
            limit = limit * 4 if self._MAX_LIMIT is None else min(limit * 4, self._MAX_LIMIT)

    def _vectors(self, keys: list[int]) -> dict[int, np.ndarray]:
        """{video key: (N, dim) float32 stored vectors}. The last search's are kept: the search
        engine asks next for the clip scores of the videos it found. A listed video whose vectors
        are missing was removed meanwhile (_Vanished: its listing row is pending or gone, settled
        before its vectors were deleted); one still listed complete is a store that lost them."""
        out = {key: self._overlay.get(key, self._recent.get(key)) for key in keys}
        wanted = {key: self._lengths[key] for key, v in out.items() if v is None}
        if wanted:
            out.update(self._fetch_vectors(wanted))
            missing = [key for key in wanted if out[key] is None]
            if missing:
                rows = self._get_listing(missing)
                gone = [key for key in missing if key not in rows or rows[key].clips != wanted[key]]
                if gone:
                    raise _Vanished(gone)
                raise ClipIndexError(
                    f"video {missing[0]} is listed complete in the store {self.uri} but its vectors are "
                    "not all there (remove the video and add it again)"
                )
        return out  # type: ignore[return-value]

    def _final_ranking(self, candidates: list[int], q: np.ndarray, k: int) -> list[VideoHit]:
        """float64 scores of every clip of the candidates (one product), ranked with ClipIndex's
        tie rule; the candidates' vectors are kept for the clip_scores calls that follow."""
        tie = tie_tolerance(self.dim)
        self._recent = vectors = self._vectors(candidates)
        if not candidates:  # every searched video was removed from the store meanwhile
            return []
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
        if key not in self:
            raise ClipIndexError(f"video {key} is not in the index")
        try:
            vectors = self._vectors([key])[key]
        except _Vanished:
            raise ClipIndexError(f"video {key} was removed from the store {self.uri}") from None
        return vectors.astype(np.float64) @ q.astype(np.float64)

    # --- files -----------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """A saved version is a pointer to the store's collections (the vectors are the store's to keep)."""
        self._flush()
        write_pointer(directory, self.STORE, self.uri, self.dim, self.fingerprint)

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """The store a saved version points to, opened for reading."""
        pointer = read_pointer(directory)
        return cls(pointer["uri"], pointer["dim"], pointer["fingerprint"])


def write_pointer(directory: str | Path, store: str, uri: str, dim: int, fingerprint: str) -> None:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    pointer = {"store": store, "uri": uri, "dim": dim, "fingerprint": fingerprint}
    (d / POINTER).write_text(json.dumps(pointer, indent=1))


def read_pointer(directory: str | Path) -> dict[str, Any]:
    """{store, uri, dim, fingerprint} of a saved version, or a ClipIndexError naming the file."""
    path = Path(directory) / POINTER
    try:
        pointer = json.loads(path.read_text())
        return {"store": str(pointer["store"]), "uri": str(pointer["uri"]), "dim": int(pointer["dim"]),
                "fingerprint": str(pointer["fingerprint"])}  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClipIndexError(f"{path}: not a readable vector store pointer ({exc})") from None


def is_saved_pointer(directory: str | Path) -> bool:
    return (Path(directory) / POINTER).is_file()

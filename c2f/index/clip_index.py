"""Clip index: faiss IndexIDMap2 over L2-normalised clip vectors, exact video ranking by max over clips.

Ids are int64 `video_key << CLIP_BITS | clip`, so the sidecar only needs the video keys and counts.
Exact top-k videos (paper Eq. 3) without scanning every clip: every video is cut into segments of
consecutive clips with a centroid and a radius (c2f/index/segments.py), whose bound q.c + r is >=
every clip score of the segment. Segments are scored exactly in decreasing bound order until the
k-th best video score reaches the next bound, so the result equals brute-force max-pooling whatever
the data; it is fast when the clips of a segment are close (consecutive clips of real videos), and
about a flat scan when they are not (then every clip is its own segment, with radius 0).
Approximate mode (large collections): a faiss IVF over the [centroid, radius] rows proposes the
segments with the largest bounds; they are scored exactly. Its recall is measured, not assumed
(`measure_recall`).
Storage "float16" halves memory; results are then exact for the stored (float16-rounded) vectors.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from c2f.errors import C2FError
from c2f.index.segments import Segments, build_segments

CLIP_BITS = 20  # up to ~1M clips per video (a 1.5 s grid: 18 days)
MAX_VIDEO_KEY = (1 << (63 - CLIP_BITS)) - 1
FORMAT_VERSION = 2  # 2 added "storage"; version 1 files (float32) still load
APPROX_MIN_VIDEOS = 50_000  # kind="auto" searches approximately from this many videos on
STORAGES = ("float32", "float16")
KINDS = ("auto", "exact", "approximate")
_SCAN_ROWS = 32_768  # clips scored per step of the exact search (bounds its temporaries)
# Gathering scattered segments costs about 3x a sequential scan per clip: when the bounds leave
# more than this fraction of all clips to score, one sequential scan of everything is faster.
_GATHER_FRACTION = 0.3


@dataclass(frozen=True)
class VideoHit:
    video_key: int
    score: float  # max over the video's clips of <q, clip>
    best_clip: int  # the first clip reaching it


class ClipIndexError(C2FError):
    """The index files are inconsistent or the input does not fit the index."""


IndexError_ = ClipIndexError  # the name callers imported first


def _storage_index(dim: int, storage: str) -> faiss.Index:
    if storage == "float16":
        return faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    return faiss.IndexFlatIP(dim)


class ClipIndex:
    """Clip vectors of many videos; `search_videos` ranks videos by their best clip.

    kind: "exact" always, "approximate" always, or "auto" (approximate from APPROX_MIN_VIDEOS
    videos on). storage: "float32" or "float16" (half the memory, exact on the rounded vectors).
    """

    def __init__(self, dim: int, fingerprint: str = "", kind: str = "auto", storage: str = "float32") -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {STORAGES}, not {storage!r}")
        if dim < 1:
            raise ValueError(f"dim must be positive, not {dim}")
        self.dim, self.fingerprint, self.kind, self.storage = dim, fingerprint, kind, storage
        self._faiss = faiss.IndexIDMap2(_storage_index(dim, storage))
        # Video table in faiss storage order: each video's clips are rows starts[i] .. + lengths[i].
        self._keys = np.zeros(0, np.int64)  # (V,)
        self._lengths = np.zeros(0, np.int64)  # (V,)
        self._starts = np.zeros(0, np.int64)  # (V,)
        self._ordinal: dict[int, int] = {}
        self._segments = Segments.empty(dim)
        self._segment_rows = np.zeros(0, np.int64)  # (S,) first storage row of each segment
        self._ivf: faiss.Index | None = None  # approximate proposals, built on first use
        self._ivf_trained_on = 0
        self._ivf_quantizer: faiss.Index | None = None
        self._id_order: np.ndarray | None = None  # argsort of segment ids, for IVF id lookups
        # Approximate search settings: IVF lists probed (None: a quarter of them, at least 16)
        # and segments proposed per query (at least 32 per requested video).
        self.approx_nprobe: int | None = None
        self.approx_segments = 1024

    # --- state ---------------------------------------------------------------------------------
    def vectors(self) -> np.ndarray:
        """Zero-copy (ntotal, dim) view of faiss's storage (float32 or float16), in storage order."""
        n = self._faiss.ntotal
        dtype = np.float16 if self.storage == "float16" else np.float32
        if n == 0:
            return np.zeros((0, self.dim), dtype)
        inner = faiss.downcast_index(self._faiss.index)
        if self.storage == "float16":
            raw = faiss.rev_swig_ptr(inner.codes.data(), n * inner.code_size)
            return raw.view(np.float16).reshape(n, self.dim)
        return faiss.rev_swig_ptr(inner.get_xb(), n * self.dim).reshape(n, self.dim)

    @property
    def num_videos(self) -> int:
        return len(self._keys)

    @property
    def num_clips(self) -> int:
        return int(self._faiss.ntotal)

    @property
    def num_segments(self) -> int:
        return len(self._segments)

    def __contains__(self, video_key: int) -> bool:
        return int(video_key) in self._ordinal

    def video_keys(self) -> list[int]:
        return self._keys.tolist()

    def storage_layout(self) -> tuple[np.ndarray, np.ndarray]:
        """(video keys (V,), first storage row of each (V,)): video i owns the rows of `vectors()`
        from its first row to the next video's."""
        return self._keys.copy(), self._starts.copy()

    def _video_table(self) -> dict[str, int]:
        """{video key: clip count} as the sidecar stores it."""
        return {str(k): int(n) for k, n in zip(self._keys.tolist(), self._lengths.tolist(), strict=True)}

    def memory_bytes(self) -> dict[str, int]:
        """Resident bytes by part (raw vectors, faiss id maps, segment bounds, approximate index)."""
        n, s = self.num_clips, self.num_segments
        code = 2 * self.dim if self.storage == "float16" else 4 * self.dim
        parts = {
            "vectors": n * code,
            "ids": n * (8 + 48),  # id_map + IndexIDMap2's hash map (~48 B per entry)
            "segments": s * (4 * self.dim + 4 + 3 * 8 + 8),
        }
        if self._ivf is not None:
            parts["approximate"] = s * (2 * (self.dim + 1) + 8) + self._ivf.nlist * 4 * (self.dim + 1)
        return parts

    def _changed(self) -> None:
        self._starts = np.concatenate([[0], np.cumsum(self._lengths)[:-1]]).astype(np.int64)
        self._ordinal = {int(k): i for i, k in enumerate(self._keys)}
        self._segment_rows = self._starts[self._segments.video] + self._segments.offset
        self._id_order = None

    def _segment_ids(self, segments: Segments, keys: np.ndarray) -> np.ndarray:
        """Stable segment ids: the faiss id of the segment's first clip."""
        return (keys[segments.video] << CLIP_BITS) | segments.offset

    # --- updates ---------------------------------------------------------------------------------
    def _check_vectors(self, video_key: int, vectors: np.ndarray) -> np.ndarray:
        v = np.asarray(vectors, dtype=np.float32)
        if v.ndim == 1:
            v = v[None]
        if v.ndim != 2 or v.shape[1] != self.dim:
            raise ClipIndexError(
                f"video {video_key}: vectors of shape {v.shape} do not fit an index of dimension {self.dim}"
            )
        if len(v) == 0:
            raise ClipIndexError(f"video {video_key} has no clip vectors")
        if len(v) >= 1 << CLIP_BITS:
            raise ClipIndexError(f"video {video_key} has too many clips ({len(v)})")
        if not 0 <= int(video_key) <= MAX_VIDEO_KEY:
            raise ClipIndexError(f"video key {video_key} is outside 0 .. {MAX_VIDEO_KEY}")
        if not np.isfinite(v).all():
            raise ClipIndexError(f"video {video_key}: vectors contain NaN or infinite values")
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        if (norms == 0).any():
            raise ClipIndexError(f"video {video_key}: a clip vector is all zeros")
        return np.ascontiguousarray(v / norms)

    def add(self, video_key: int, vectors: np.ndarray) -> None:
        """Add (or replace) one video's clip vectors (N, dim), L2-normalised here."""
        self.add_many({int(video_key): vectors})

    def add_many(self, videos: dict[int, np.ndarray]) -> None:
        """Add (or replace) several videos at once; only the new videos' bounds are computed."""
        checked = {int(k): self._check_vectors(int(k), v) for k, v in videos.items()}
        if not checked:
            return
        replaced = [k for k in checked if k in self._ordinal]
        if replaced:
            self._remove_keys(replaced)
        keys = np.fromiter(checked, np.int64, len(checked))
        lengths = np.fromiter((len(v) for v in checked.values()), np.int64, len(checked))
        ids = np.concatenate(
            [(k << CLIP_BITS) + np.arange(n, dtype=np.int64) for k, n in zip(keys, lengths, strict=True)]
        )
        old_rows, old_videos = self.num_clips, self.num_videos
        self._faiss.add_with_ids(np.concatenate(list(checked.values())), ids)
        # Bounds from the stored values (float16-rounded if so stored).
        new = build_segments(self.vectors()[old_rows:], lengths)
        new.video += old_videos
        self._keys = np.concatenate([self._keys, keys])
        self._lengths = np.concatenate([self._lengths, lengths])
        self._segments = Segments.concat([self._segments, new])
        self._changed()
        if self._ivf is not None:
            if len(self._segments) > 4 * self._ivf_trained_on:
                self._ivf = None  # grown too much for its clusters: retrain on next use
            else:
                self._ivf.add_with_ids(_bound_rows(new), self._segment_ids(new, self._keys))

    def remove(self, video_key: int) -> None:
        if int(video_key) not in self._ordinal:
            raise ClipIndexError(f"video {video_key} is not in the index")
        self._remove_keys([int(video_key)])

    def _remove_keys(self, keys: list[int]) -> None:
        gone = np.array([self._ordinal[k] for k in keys], np.int64)
        ids = np.concatenate(
            [(self._keys[i] << CLIP_BITS) + np.arange(self._lengths[i], dtype=np.int64) for i in gone]
        )
        self._faiss.remove_ids(faiss.IDSelectorBatch(ids))  # keeps the order of the other rows
        keep_video = np.ones(self.num_videos, bool)
        keep_video[gone] = False
        keep_segment = keep_video[self._segments.video]
        if self._ivf is not None:
            dropped = self._segments.select(~keep_segment)
            self._ivf.remove_ids(faiss.IDSelectorBatch(self._segment_ids(dropped, self._keys)))
        new_ordinal = np.cumsum(keep_video) - 1
        self._segments = self._segments.select(keep_segment)
        self._segments.video = new_ordinal[self._segments.video]
        self._keys, self._lengths = self._keys[keep_video], self._lengths[keep_video]
        self._changed()

    # --- search ----------------------------------------------------------------------------------
    def _prep_query(self, query: np.ndarray) -> np.ndarray:
        q = np.asarray(query, np.float32)
        if q.ndim == 1:
            q = q[None]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ClipIndexError(
                f"query of shape {np.shape(query)} does not fit an index of dimension {self.dim}"
            )
        if not np.isfinite(q).all():
            raise ClipIndexError("query contains NaN or infinite values")
        norms = np.linalg.norm(q, axis=1, keepdims=True)
        if (norms == 0).any():
            raise ClipIndexError("query vector is all zeros")
        return q / norms

    def _video_scores(self, i: int, q: np.ndarray) -> np.ndarray:
        s, n = self._starts[i], self._lengths[i]
        return self.vectors()[s : s + n].astype(np.float32, copy=False) @ q  # (N,)

    def clip_scores(self, query: np.ndarray, video_key: int) -> np.ndarray:
        """(N,) inner products of the (normalised) query with every clip of one video."""
        q = self._prep_query(query)[0]
        if int(video_key) not in self._ordinal:
            raise ClipIndexError(f"video {video_key} is not in the index")
        return self._video_scores(self._ordinal[int(video_key)], q)

    def use_approximate(self) -> bool:
        return self.kind == "approximate" or (self.kind == "auto" and self.num_videos >= APPROX_MIN_VIDEOS)

    def search_videos(
        self, query: np.ndarray, k: int, approximate: bool | None = None
    ) -> list[list[VideoHit]]:
        """Top-k videos by max clip score for each query row ((dim,) or (B, dim)); ties by video
        key. Exact unless approximate (default: `use_approximate()`). Empty index: empty lists."""
        if k < 1:
            raise ClipIndexError(f"k must be at least 1, not {k}")
        qs = self._prep_query(query)
        if self.num_videos == 0:
            return [[] for _ in qs]
        approx = self.use_approximate() if approximate is None else approximate
        k = min(k, self.num_videos)
        return [self._search_approximate(q, k) if approx else self._search_exact(q, k) for q in qs]

    def _segment_maxima(self, segs: np.ndarray, q: np.ndarray) -> np.ndarray:
        """(len(segs),) best clip score of each segment."""
        lengths = self._segments.length[segs]
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        rows = np.repeat(self._segment_rows[segs] - offsets, lengths) + np.arange(lengths.sum())
        scores = self.vectors()[rows].astype(np.float32, copy=False) @ q  # (rows,)
        return np.maximum.reduceat(scores, offsets)

    def _search_exact(self, q: np.ndarray, k: int) -> list[VideoHit]:
        seg = self._segments
        bounds = seg.centroid @ q + seg.radius  # (S,) >= every clip score of the segment
        best = np.full(self.num_videos, -np.inf, np.float32)  # (V,) best clip score seen so far
        # Round 1: the segments with the largest bounds give a first k-th best score (a lower
        # bound of the true one), which rules out every segment whose bound does not exceed it.
        first = min(len(seg), max(256, 16 * k))
        top = np.argpartition(-bounds, first - 1)[:first] if first < len(seg) else np.arange(len(seg))
        np.maximum.at(best, seg.video[top], self._segment_maxima(top, q))
        kth = self._kth(best, k)
        # Round 2: the rest above that bound, in storage order (sequential reads), in chunks; each
        # chunk raises the k-th score and prunes the next ones further.
        rest = np.ones(len(seg), bool)
        rest[top] = False
        rest = np.flatnonzero(rest & (bounds > kth))
        if seg.length[rest].sum() > _GATHER_FRACTION * self.num_clips:
            flat = self._flat_maxima(q)  # the bounds are too loose for this query
            return self._final_ranking(flat, self._kth(flat, k), q, k)
        if len(rest):
            rows_before = np.cumsum(seg.length[rest])
            cuts = np.searchsorted(
                rows_before, np.arange(_SCAN_ROWS, rows_before[-1], _SCAN_ROWS), side="right"
            )
            for segs in np.split(rest, cuts):
                segs = segs[bounds[segs] > kth]
                if len(segs):
                    np.maximum.at(best, seg.video[segs], self._segment_maxima(segs, q))
                    kth = self._kth(best, k)
        return self._final_ranking(best, kth, q, k)

    def _flat_maxima(self, q: np.ndarray) -> np.ndarray:
        """(V,) best clip score of every video by one sequential scan of all clips."""
        x = self.vectors()
        scores = np.concatenate(
            [
                x[s : s + _SCAN_ROWS * 8].astype(np.float32, copy=False) @ q
                for s in range(0, len(x), _SCAN_ROWS * 8)
            ]
        )
        return np.maximum.reduceat(scores, self._starts)

    @staticmethod
    def _kth(best: np.ndarray, k: int) -> float:
        return float(np.partition(best, len(best) - k)[len(best) - k])

    def _final_ranking(self, best: np.ndarray, kth: float, q: np.ndarray, k: int) -> list[VideoHit]:
        """Full exact scores of the videos that may be in the top k (ties and rounding included)."""
        hits = []
        for i in np.flatnonzero(best >= kth - 1e-5):
            scores = self._video_scores(int(i), q)
            m = int(scores.argmax())
            hits.append(VideoHit(int(self._keys[i]), float(scores[m]), m))
        hits.sort(key=lambda h: (-h.score, h.video_key))
        return hits[:k]

    # --- approximate -------------------------------------------------------------------------------
    def _search_approximate(self, q: np.ndarray, k: int) -> list[VideoHit]:
        if self._ivf is None:
            self._build_ivf()
        assert self._ivf is not None
        want = min(len(self._segments), max(self.approx_segments, 32 * k))
        self._ivf.nprobe = min(self._ivf.nlist, self.approx_nprobe or max(16, self._ivf.nlist // 4))
        _, ids = self._ivf.search(np.append(q, np.float32(1.0))[None], want)
        segs = self._segments_of_ids(ids[0][ids[0] >= 0])
        best = np.full(self.num_videos, -np.inf, np.float32)
        if len(segs):
            np.maximum.at(best, self._segments.video[segs], self._segment_maxima(segs, q))
        if np.isfinite(best).sum() < k:
            return self._search_exact(q, k)  # too few proposals: answer exactly
        return self._final_ranking(best, self._kth(best, k), q, k)

    def _segments_of_ids(self, ids: np.ndarray) -> np.ndarray:
        all_ids = self._segment_ids(self._segments, self._keys)
        if self._id_order is None:
            self._id_order = np.argsort(all_ids)
        pos = np.searchsorted(all_ids[self._id_order], ids)
        return self._id_order[np.minimum(pos, len(all_ids) - 1)]

    def _build_ivf(self) -> None:
        rows = _bound_rows(self._segments)  # (S, d + 1)
        n = len(rows)
        nlist = max(1, min(4096, int(np.sqrt(n))))
        # [c, r] . [q, 1] = q.c + r: the IVF ranks segments by their exact-search bound.
        # float16 rows: half the memory; the proposals only need the bound order roughly.
        quantizer = faiss.IndexFlatIP(self.dim + 1)
        ivf = faiss.IndexIVFScalarQuantizer(
            quantizer,
            self.dim + 1,
            nlist,
            faiss.ScalarQuantizer.QT_fp16,
            faiss.METRIC_INNER_PRODUCT,
        )
        sample = rows
        if n > 64 * nlist:
            sample = rows[np.random.default_rng(0).choice(n, size=64 * nlist, replace=False)]
        ivf.train(sample)
        ivf.add_with_ids(rows, self._segment_ids(self._segments, self._keys))
        self._ivf_quantizer = quantizer  # the IVF does not own it: keep it alive as long as the IVF
        self._ivf, self._ivf_trained_on = ivf, n

    # --- persistence -----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write index + sidecar into new files, then rename: readers never see half an index.
        The sidecar goes last; `load` checks that both agree."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        sidecar = {
            "format": FORMAT_VERSION,
            "dim": self.dim,
            "metric": "inner_product",
            "storage": self.storage,
            "fingerprint": self.fingerprint,
            "kind": self.kind,
            "clip_bits": CLIP_BITS,
            "ntotal": self.num_clips,
            "videos": self._video_table(),
        }
        fd, tmp_index = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".faiss")
        os.close(fd)
        faiss.write_index(self._faiss, tmp_index)
        fd, tmp_side = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(sidecar, f)
        os.replace(tmp_index, d / "clips.faiss")
        os.replace(tmp_side, d / "clips.json")

    @classmethod
    def load(cls, directory: str | Path) -> ClipIndex:
        d = Path(directory)
        try:
            side = json.loads((d / "clips.json").read_text())
            raw = faiss.read_index(str(d / "clips.faiss"))
        except FileNotFoundError as exc:
            raise ClipIndexError(f"no index in {d} ({exc.filename} missing)") from None
        except Exception as exc:
            raise ClipIndexError(f"unreadable index in {d}: {exc}") from None
        if side.get("format") not in (1, FORMAT_VERSION) or side.get("clip_bits") != CLIP_BITS:
            raise ClipIndexError(f"{d}: index format {side.get('format')} is not supported")
        videos = side.get("videos", {})
        if raw.ntotal != side.get("ntotal") or raw.d != side.get("dim") or sum(videos.values()) != raw.ntotal:
            raise ClipIndexError(
                f"{d}: index and sidecar disagree (faiss has {raw.ntotal} vectors of dim {raw.d}, "
                f"sidecar says {side.get('ntotal')} of dim {side.get('dim')}); "
                "rebuild it with `c2f library reindex`"
            )
        if not isinstance(raw, faiss.IndexIDMap2):
            raise ClipIndexError(f"{d}: clips.faiss is a {type(raw).__name__}, not an IndexIDMap2")
        idx = cls(
            side["dim"], side.get("fingerprint", ""), side.get("kind", "auto"), side.get("storage", "float32")
        )
        if type(faiss.downcast_index(raw.index)) is not type(faiss.downcast_index(idx._faiss.index)):
            raise ClipIndexError(f"{d}: clips.faiss does not hold {idx.storage} vectors as the sidecar says")
        idx._faiss = raw
        idx._load_tables(d)
        if idx._video_table() != videos:
            raise ClipIndexError(f"{d}: sidecar video table does not match the index ids")
        return idx

    def _load_tables(self, d: Path) -> None:
        """Video table and bounds from faiss's ids and vectors (videos are contiguous runs)."""
        ids = (
            faiss.vector_to_array(self._faiss.id_map).astype(np.int64)
            if self.num_clips
            else np.zeros(0, np.int64)
        )
        keys, clips = ids >> CLIP_BITS, ids & ((1 << CLIP_BITS) - 1)
        first = np.flatnonzero(np.diff(keys, prepend=-1)) if len(ids) else np.zeros(0, np.int64)
        lengths = np.diff(np.append(first, len(ids)))
        run_start = np.repeat(first, lengths)
        if not np.array_equal(clips, np.arange(len(ids)) - run_start) or len(
            set(keys[first].tolist())
        ) != len(first):
            raise ClipIndexError(f"{d}: clip ids are not contiguous per video; rebuild the index")
        self._keys, self._lengths = keys[first], lengths.astype(np.int64)
        self._segments = build_segments(self.vectors(), self._lengths)
        self._changed()


def _bound_rows(segments: Segments) -> np.ndarray:
    """(S, d + 1) float32 rows [centroid, radius]."""
    return np.ascontiguousarray(np.concatenate([segments.centroid, segments.radius[:, None]], axis=1))


def measure_recall(index: ClipIndex, queries: np.ndarray, k: int = 10) -> float:
    """Mean over queries of |approximate top-k videos ∩ exact top-k videos| / min(k, videos)."""
    exact = index.search_videos(queries, k, approximate=False)
    approx = index.search_videos(queries, k, approximate=True)
    want = min(k, index.num_videos)
    if want == 0:
        raise ClipIndexError("recall of an empty index is undefined")
    overlap = [
        len({h.video_key for h in e} & {h.video_key for h in a}) / want
        for e, a in zip(exact, approx, strict=True)
    ]
    return float(np.mean(overlap))


def brute_force_top_videos(
    vectors_by_video: dict[int, np.ndarray], query: np.ndarray, k: int
) -> list[VideoHit]:
    """Reference: max-pool over every clip of every video (used by tests and the benchmark)."""
    q = np.asarray(query, np.float32)
    q = q / np.linalg.norm(q)
    scored = []
    for key, v in vectors_by_video.items():
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        s = v @ q
        m = int(s.argmax())
        scored.append(VideoHit(key, float(s[m]), m))
    scored.sort(key=lambda h: (-h.score, h.video_key))
    return scored[:k]

"""Clip index: faiss IndexIDMap2 over L2-normalised clip vectors, exact video ranking by max over clips.

Ids are int64 `video_key << CLIP_BITS | clip`, so the sidecar only needs the video keys and counts.

Exact top-k videos (paper Eq. 3), certified rather than assumed: one scan of every clip in a
fast precision (float32, float16, bfloat16 or int8, chosen by measurement on this machine: see
c2f/index/scan.py for the scans and their proven bounds e) gives every video's max to within e.
Only videos whose max may reach the k-th best are rescored in float32 (bound ~3e-5), and those
still in reach in float64, so the ranking equals brute-force max-pooling whatever the data and
whatever precision scanned; the precision only changes the speed. Videos whose float64 scores
tie within the tolerance of c2f/index/ranking.py are ordered by video key, so the ranking is the
same on every CPU path.

Approximate mode (large collections): a 4-bit product-quantisation fast-scan index over every clip
proposes clips, the best proposals are rescored exactly on the stored vectors (faiss IndexRefine),
and videos are ranked by their best rescored clip. Its recall is measured, not assumed
(`measure_recall`).
Storage "float16" halves memory; results are then exact for the stored (float16-rounded) vectors.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import torch

from c2f import tuning
from c2f.errors import C2FError
from c2f.index.ranking import first_best, order_videos_with_ties, tie_tolerance
from c2f.index.scan import PRECISIONS, Scan, float32_error, make_scan, scan_is_safe
from c2f.shared_files import atomic_paths

CLIP_BITS = 20  # up to ~1M clips per video (a 1.5 s grid: 18 days)
MAX_VIDEO_KEY = (1 << (63 - CLIP_BITS)) - 1
FORMAT_VERSION = 2  # 2 added "storage"; version 1 files (float32) still load
APPROX_MIN_VIDEOS = 50_000  # kind="auto" searches approximately from this many videos on
STORAGES = ("float32", "float16")
KINDS = ("auto", "exact", "approximate")
_SCAN_ROWS = 262_144  # rows per step of a full float32 scan (bounds its temporaries)
# The PQ proposals are split into this many row ranges, scanned on parallel threads, from
# _PARALLEL_MIN_ROWS clips on (faiss scans for one query on one thread).
_SCAN_THREADS = max(1, min(8, os.cpu_count() or 1))
_PARALLEL_MIN_ROWS = 65_536
# When more than this fraction of the videos are left to rescore (scores too close for the scan's
# bound to separate them), one float32 scan of every clip costs about the same: do that instead.
_RESCORE_FRACTION = 0.5
SCANS = ("auto", *PRECISIONS)
# Indices under this many clips scan in float32 (a few ms, no copy): there is nothing to tune.
_TUNE_MIN_ROWS = 65_536
# Each candidate precision is timed on whole videos covering about this many rows.
_TUNE_ROWS = 131_072
_NORM_SLACK = 2.0**-10  # stored rows of a loaded index must be unit vectors to this (scan.NORM)


def _scores(rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(R,) float32 inner products of stored rows (float32 or float16) with q. Through torch, like
    the scans: a second BLAS thread pool (numpy's) spinning beside torch's slowed searches ~3x on
    2 cores."""
    x = torch.from_numpy(np.ascontiguousarray(rows))
    return (x.float() @ torch.from_numpy(q)).numpy()


def _pq_subquantizers(dim: int) -> int | None:
    """4-bit PQ fast scan with 4 dimensions per subquantizer (64 bytes for 512-d), or None."""
    for m in range(dim // 4, 1, -1):
        if dim % m == 0 and m % 2 == 0:
            return m
    return None


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
    scan: the precision of the exact search's first pass, or "auto": measured on this machine
    (c2f.tuning task "scan", override `C2F_TUNE_SCAN='{"precision": "int8"}'`). A precision whose
    kernel fails the float32-accumulation check falls back to float32. Results never depend on it.
    """

    def __init__(
        self,
        dim: int,
        fingerprint: str = "",
        kind: str = "auto",
        storage: str = "float32",
        scan: str = "auto",
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {STORAGES}, not {storage!r}")
        if scan not in SCANS:
            raise ValueError(f"scan must be one of {SCANS}, not {scan!r}")
        if dim < 1:
            raise ValueError(f"dim must be positive, not {dim}")
        self.dim, self.fingerprint, self.kind, self.storage, self.scan = dim, fingerprint, kind, storage, scan
        self._faiss = faiss.IndexIDMap2(_storage_index(dim, storage))
        # Video table in faiss storage order: each video's clips are rows starts[i] .. + lengths[i].
        self._keys = np.zeros(0, np.int64)  # (V,)
        self._lengths = np.zeros(0, np.int64)  # (V,)
        self._starts = np.zeros(0, np.int64)  # (V,)
        self._ordinal: dict[int, int] = {}
        # The exact search's first pass, built on first use (its copy, if any, follows updates);
        # the tuning choice behind it; whether loaded rows still need their unit-norm check.
        self._scan: Scan | None = None
        self.scan_choice: tuning.Choice | None = None
        self._norms_unchecked = False
        # Approximate proposals, built on first use: PQ fast-scan shards over contiguous row ranges
        # (searched in parallel threads by faiss.IndexShards, which does not own them).
        self._pq: faiss.IndexShards | None = None
        self._pq_shards: list[faiss.Index] = []
        self._pq_trained_on = 0
        # Approximate search: clips proposed by the PQ scan per query, of which the best
        # `approx_refined` are rescored exactly (at least 128 per requested video). Measured on
        # 100k synthetic videos (6M clips): video recall@10 1.0 at ~35 ms (BENCHMARKS.md).
        self.approx_proposals = 65_536
        self.approx_refined = 4096

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
        """Resident bytes by part (stored vectors, faiss id maps, scan copy, PQ codes)."""
        n = self.num_clips
        code = 2 * self.dim if self.storage == "float16" else 4 * self.dim
        parts = {
            "vectors": n * code,
            "ids": n * (8 + 48),  # id_map + IndexIDMap2's hash map (~48 B per entry)
            "scan_copy": self._scan.nbytes if self._scan is not None else 0,
        }
        if self._pq is not None:
            code = self._pq_shards[0].code_size
            parts["approximate"] = n * code + len(self._pq_shards) * 16 * self.dim * 4  # codes + codebooks
        return parts

    def _changed(self) -> None:
        self._starts = np.concatenate([[0], np.cumsum(self._lengths)[:-1]]).astype(np.int64)
        self._ordinal = {int(k): i for i, k in enumerate(self._keys)}

    def _video_of_rows(self, rows: np.ndarray) -> np.ndarray:
        """(R,) video ordinal owning each storage row."""
        return np.searchsorted(self._starts, rows, side="right") - 1

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
        vectors = np.concatenate(list(checked.values()))
        first_new = self.num_clips
        self._faiss.add_with_ids(vectors, ids)
        if self._scan is not None:
            self._scan.append(self.vectors()[first_new:])  # the stored (maybe float16) rows
        if self._pq is not None:
            if self.num_clips > 4 * self._pq_trained_on:
                self._drop_pq()  # grown too much for its codebooks: retrain on next use
            else:
                self._pq_shards[-1].add(vectors)  # rows are appended: they belong to the last range
                self._pq.syncWithSubIndexes()
        self._keys = np.concatenate([self._keys, keys])
        self._lengths = np.concatenate([self._lengths, lengths])
        self._changed()

    def remove(self, video_key: int) -> None:
        if int(video_key) not in self._ordinal:
            raise ClipIndexError(f"video {video_key} is not in the index")
        self._remove_keys([int(video_key)])

    def _remove_keys(self, keys: list[int]) -> None:
        gone = np.array([self._ordinal[k] for k in keys], np.int64)
        ids = np.concatenate(
            [(self._keys[i] << CLIP_BITS) + np.arange(self._lengths[i], dtype=np.int64) for i in gone]
        )
        rows = np.concatenate([self._starts[i] + np.arange(self._lengths[i], dtype=np.int64) for i in gone])
        rows_before = self.num_clips
        self._faiss.remove_ids(faiss.IDSelectorBatch(ids))  # keeps the order of the other rows
        # The copies drop the same rows, also keeping the order of the others.
        if self._scan is not None:
            keep = np.ones(rows_before, bool)
            keep[rows] = False
            self._scan.keep(keep)
        if self._pq is not None:
            first = 0
            for shard in self._pq_shards:
                size = shard.ntotal
                local = rows[(rows >= first) & (rows < first + size)] - first
                if len(local):
                    shard.remove_ids(faiss.IDSelectorBatch(local))
                first += size
            self._pq.syncWithSubIndexes()
        keep_video = np.ones(self.num_videos, bool)
        keep_video[gone] = False
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
        return _scores(self.vectors()[s : s + n], q)  # (N,)

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

    def _search_exact(self, q: np.ndarray, k: int) -> list[VideoHit]:
        return self._exact_top(q, k, self._active_scan(q), self.num_videos)

    def _exact_top(self, q: np.ndarray, k: int, scan: Scan, videos: int) -> list[VideoHit]:
        """Exact top k of the first `videos` videos, given a scan of exactly their rows."""
        starts = self._starts if videos == self.num_videos else self._starts[:videos]
        k = min(k, videos)
        approx = scan.scores(q)  # (rows,) each within its error of the exact score
        maxima = np.maximum.reduceat(approx, starts)  # (videos,)
        candidates = self._candidates(maxima, scan.video_error(approx, starts), k)
        if scan.precision != "float32":
            e32 = float32_error(self.dim)
            if len(candidates) > max(k, _RESCORE_FRACTION * videos):
                flat = self._float32_maxima(q, videos)  # the bound cannot separate these scores
                candidates = self._candidates(flat, e32, k)
            else:
                candidates = candidates[self._candidates(self._maxima_of(candidates, q), e32, k)]
        return self._final_ranking(candidates, q, k)

    def _candidates(self, maxima: np.ndarray, err: float | np.ndarray, k: int) -> np.ndarray:
        """Videos whose exact max (within err of `maxima`) may be in the top k or tie with it: at
        least k videos score >= the k-th best lower bound, so nothing below it minus the tie
        tolerance can be in the top k or in the k-th video's tie group."""
        lower = maxima - err
        floor = self._kth(lower, k) - tie_tolerance(self.dim)
        return np.flatnonzero(maxima + err >= floor)

    def _rows_of(self, videos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(storage rows of the given videos, in order; offset of each video's first row in them)."""
        lengths = self._lengths[videos]
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        rows = np.repeat(self._starts[videos] - offsets, lengths) + np.arange(lengths.sum())
        return rows, offsets

    def _maxima_of(self, videos: np.ndarray, q: np.ndarray) -> np.ndarray:
        """(len(videos),) float32 best clip score of each given video (their rows in one product)."""
        rows, offsets = self._rows_of(videos)
        return np.maximum.reduceat(_scores(self.vectors()[rows], q), offsets)

    def _float32_maxima(self, q: np.ndarray, videos: int) -> np.ndarray:
        """(videos,) float32 best clip score of each of the first `videos` videos, one scan."""
        rows = self.num_clips if videos == self.num_videos else int(self._starts[videos])
        scores = Scan(self.dim, lambda: self.vectors()[:rows]).scores(q)
        return np.maximum.reduceat(scores, self._starts[:videos])

    @staticmethod
    def _kth(best: np.ndarray, k: int) -> float:
        return float(np.partition(best, len(best) - k)[len(best) - k])

    def _final_ranking(self, candidates: np.ndarray, q: np.ndarray, k: int) -> list[VideoHit]:
        """Exact scores of the candidates, ranked with ties by video key: float32 scores of all
        their clips, then float64 for the few clips that may be their video's best (within
        2 e32 + the tie tolerance of its float32 best)."""
        rows, offsets = self._rows_of(candidates)
        lengths = self._lengths[candidates]
        s32 = _scores(self.vectors()[rows], q)  # (R,) within e32
        tie = tie_tolerance(self.dim)
        reach = np.repeat(np.maximum.reduceat(s32, offsets), lengths) - 2 * float32_error(self.dim) - tie
        near = np.flatnonzero(s32 >= reach)  # (r,) positions in `rows`, in video order
        x = torch.from_numpy(np.ascontiguousarray(self.vectors()[rows[near]])).double()  # (r, d), exact
        s64 = torch.mv(x, torch.from_numpy(q).double()).numpy()  # (r,) within float64_error
        owner = np.searchsorted(offsets, near, "right") - 1  # candidate of each near clip
        first = np.flatnonzero(np.diff(owner, prepend=-1))  # every candidate owns >= 1 near clip
        maxima = np.maximum.reduceat(s64, first)
        ends = np.append(first[1:], len(near))
        hits = []
        for i in order_videos_with_ties(maxima, self._keys[candidates], tie)[:k]:
            best = first_best(s64[first[i] : ends[i]], tie)
            clip = int(near[first[i] + best] - offsets[i])
            hits.append(VideoHit(int(self._keys[candidates[i]]), float(maxima[i]), clip))
        return hits

    # --- the scan ----------------------------------------------------------------------------------
    def _wanted_precision(self, q: np.ndarray) -> str:
        """The scan precision: forced, float32 for small indices, else measured (or cached, or
        from C2F_TUNE_SCAN); float32 when the chosen kernel fails the accumulation check."""
        if self.scan != "auto":
            precision = self.scan
        elif self.num_clips < _TUNE_MIN_ROWS and tuning.env_name("scan") not in os.environ:
            precision = "float32"
        else:
            self.scan_choice = tuning.choose(
                "scan",
                f"d{self.dim}-{self.storage}",
                [{"precision": p} for p in PRECISIONS],
                lambda setting: self._time_scan(setting["precision"], q),
            )
            precision = self.scan_choice.setting.get("precision")
            if precision not in PRECISIONS:
                raise ClipIndexError(
                    f"{tuning.env_name('scan')}: scan precision must be one of {PRECISIONS}, not {precision!r}"
                )
        return precision if scan_is_safe(precision, self.dim) else "float32"

    def _active_scan(self, q: np.ndarray) -> Scan:
        if self._norms_unchecked:
            self._check_norms()
        precision = self._wanted_precision(q)
        if self._scan is None or self._scan.precision != precision:
            self._scan = None  # free the old copy before building the new one
            self._scan = make_scan(precision, self.dim, self.vectors).build()
        return self._scan

    @property
    def scan_precision(self) -> str | None:
        """The precision of the scan in use (None before the first exact search)."""
        return self._scan.precision if self._scan is not None else None

    def _time_scan(self, precision: str, q: np.ndarray) -> float | None:
        """Seconds of one exact top-10 search on whole videos covering ~_TUNE_ROWS rows, scanned in
        `precision` (None when its kernel fails the accumulation check)."""
        if not scan_is_safe(precision, self.dim):
            return None
        videos = min(self.num_videos, max(1, int(np.searchsorted(self._starts, _TUNE_ROWS, "left"))))
        rows = self.num_clips if videos == self.num_videos else int(self._starts[videos])
        sample = make_scan(precision, self.dim, lambda: self.vectors()[:rows]).build()
        return tuning.time_call(lambda: self._exact_top(q, 10, sample, videos), repeats=3)

    def _check_norms(self) -> None:
        """The scan bounds assume unit rows; a loaded file is checked once before it is scanned."""
        x = self.vectors()
        for s in range(0, len(x), _SCAN_ROWS):
            norms = torch.linalg.vector_norm(torch.from_numpy(x[s : s + _SCAN_ROWS]).float(), dim=1)
            if bool(((norms - 1).abs() > _NORM_SLACK).any()):
                raise ClipIndexError(
                    "index vectors are not unit length; rebuild it with `c2f library reindex`"
                )
        self._norms_unchecked = False

    # --- approximate -------------------------------------------------------------------------------
    def _search_approximate(self, q: np.ndarray, k: int) -> list[VideoHit]:
        if self._pq is None and not self._build_pq():
            return self._search_exact(q, k)  # too few clips (or an odd dimension) for PQ codebooks
        assert self._pq is not None
        refined = min(self.num_clips, max(self.approx_refined, 128 * k))
        proposals = min(self.num_clips, max(self.approx_proposals, refined))
        # PQ scores propose clips; IndexRefine rescores them on the stored vectors, keeps the best.
        # (The wrapper is made per search: it copies ntotal when made, and the index changes.)
        refine = faiss.IndexRefine(self._pq, faiss.downcast_index(self._faiss.index))
        params = faiss.IndexRefineSearchParameters(k_factor=proposals / refined)
        scores, rows = refine.search(q[None], refined, params=params)
        keep = rows[0] >= 0
        best = np.full(self.num_videos, -np.inf, np.float32)
        np.maximum.at(best, self._video_of_rows(rows[0][keep]), scores[0][keep])
        if np.isfinite(best).sum() < k:
            return self._search_exact(q, k)  # too few proposals: answer exactly
        return self._final_ranking(self._candidates(best, float32_error(self.dim), k), q, k)

    def _build_pq(self) -> bool:
        m = _pq_subquantizers(self.dim)
        n = self.num_clips
        if m is None or n < 1024:
            return False
        trained = faiss.IndexPQFastScan(self.dim, m, 4, faiss.METRIC_INNER_PRODUCT)
        x = self.vectors()
        sample = np.sort(np.random.default_rng(0).choice(n, size=min(n, 65_536), replace=False))
        trained.train(x[sample].astype(np.float32))
        parts = _SCAN_THREADS if n >= _PARALLEL_MIN_ROWS else 1
        bounds = np.linspace(0, n, parts + 1).astype(np.int64)
        shards = faiss.IndexShards(self.dim, True, True)  # threaded, successive ids = storage rows
        self._pq_shards = []
        for a, b in itertools.pairwise(bounds):
            shard = faiss.clone_index(trained)
            for s in range(a, b, _SCAN_ROWS):
                shard.add(x[s : min(s + _SCAN_ROWS, b)].astype(np.float32))
            shards.add_shard(shard)
            self._pq_shards.append(shard)
        shards.syncWithSubIndexes()
        self._pq, self._pq_trained_on = shards, n
        return True

    def _drop_pq(self) -> None:
        self._pq, self._pq_shards, self._pq_trained_on = None, [], 0

    # --- persistence -----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write index + sidecar into new files, then rename: readers never see half an index.
        The sidecar goes last; `load` checks that both agree. An index that searches
        approximately also saves its PQ codes (built now if need be: indexing, not the first
        query after loading, pays for them)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        if self.use_approximate() and self._pq is None:
            self._build_pq()
        shards = len(self._pq_shards)
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
            "pq": {"shards": shards, "trained_on": self._pq_trained_on} if shards else None,
        }
        names = ["clips.faiss", *(f"clips.pq{i}.faiss" for i in range(shards)), "clips.json"]
        with atomic_paths([d / name for name in names]) as (tmp_index, *tmp_shards, tmp_side):
            faiss.write_index(self._faiss, str(tmp_index))
            for shard, tmp in zip(self._pq_shards, tmp_shards, strict=True):
                faiss.write_index(shard, str(tmp))
            tmp_side.write_text(json.dumps(sidecar))

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
        if side.get("pq"):
            idx._load_pq(d, side["pq"])
        return idx

    def _load_pq(self, d: Path, meta: dict) -> None:
        """Saved PQ shards, if whole and in step with the vectors; else they are rebuilt on use."""
        try:
            # (read_index already returns the concrete class; a downcast proxy would not own it)
            shards = [faiss.read_index(str(d / f"clips.pq{i}.faiss")) for i in range(int(meta["shards"]))]
        except Exception:
            return
        if sum(s.ntotal for s in shards) != self.num_clips or any(s.d != self.dim for s in shards):
            return
        self._pq = faiss.IndexShards(self.dim, True, True)
        for shard in shards:
            self._pq.add_shard(shard)
        self._pq.syncWithSubIndexes()
        self._pq_shards, self._pq_trained_on = shards, int(meta["trained_on"])

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
        self._norms_unchecked = True  # checked before the first scan (bounds assume unit rows)
        self._changed()


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
    vectors_by_video: dict[int, np.ndarray], query: np.ndarray, k: int, normalise: bool = True
) -> list[VideoHit]:
    """Reference: max-pool over every clip of every video in float64 (numpy), ranked with the
    index's tie rule (used by tests). The clips are normalised as the index normalises them, or
    taken as they are (`normalise=False`: vectors read back from an index, e.g. float16 ones)."""
    q = np.asarray(query, np.float32)[None]
    q = (q / np.linalg.norm(q, axis=1, keepdims=True))[0].astype(np.float64)  # as _prep_query does
    keys = np.array(list(vectors_by_video), np.int64)
    best, clip = np.zeros(len(keys)), np.zeros(len(keys), np.int64)
    tie = tie_tolerance(len(q))
    for i, v in enumerate(vectors_by_video.values()):
        v = np.asarray(v, np.float32)
        if normalise:
            v = v / np.linalg.norm(v, axis=1, keepdims=True)
        s = v.astype(np.float64) @ q
        best[i], clip[i] = s.max(), first_best(s, tie)
    return [
        VideoHit(int(keys[i]), float(best[i]), int(clip[i]))
        for i in order_videos_with_ties(best, keys, tie)[:k]
    ]

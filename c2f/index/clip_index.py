"""Clip index: faiss IndexIDMap2 over L2-normalised clip vectors, exact video ranking by max over clips.

Ids are int64 `video_key << CLIP_BITS | clip`, so the sidecar only needs the video keys.
Exact top-k videos (paper Eq. 3) without scanning every clip: each video is cut into temporal
segments of at most SEGMENT clips, each with a centroid c and radius r = max ||x - c||; for a unit
query, q.x <= q.c + r for every clip x of the segment. Segments are visited in decreasing bound
order and scored exactly; the search stops when the k-th best exact video score reaches the next
bound, so the result equals brute-force max-pooling whatever the data (consecutive clips of
real videos are close, which makes the bounds tight and the search fast).
Approximate mode (large collections): a faiss IVF index over the segment centroids proposes
candidate segments, which are scored exactly; its recall against exact is measured, not assumed.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from c2f.errors import C2FError

CLIP_BITS = 20  # up to ~1M clips per video (a 1.5 s grid: 18 days)
SEGMENT = 12  # clips per bound segment
FORMAT_VERSION = 1
APPROX_MIN_VIDEOS = 50_000  # "auto" switches to approximate search above this many videos


@dataclass(frozen=True)
class VideoHit:
    video_key: int
    score: float  # max over the video's clips of <q, clip>
    best_clip: int


class IndexError_(C2FError):
    """The index files are inconsistent or the input does not fit the index."""


class ClipIndex:
    def __init__(self, dim: int, fingerprint: str = "", kind: str = "auto") -> None:
        if kind not in ("auto", "exact", "approximate"):
            raise ValueError(f"kind must be auto, exact or approximate, not {kind!r}")
        self.dim, self.fingerprint, self.kind = dim, fingerprint, kind
        self._faiss = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._rebuild_tables()

    # --- bookkeeping ---------------------------------------------------------------------------
    def _rebuild_tables(self) -> None:
        """Derive every table from faiss's own storage order (ids and contiguous vectors)."""
        ids = (
            faiss.vector_to_array(self._faiss.id_map).astype(np.int64)
            if self._faiss.ntotal
            else np.zeros(0, np.int64)
        )
        self._ids = ids
        keys = ids >> CLIP_BITS
        self._starts: dict[int, tuple[int, int]] = {}
        if len(ids):
            change = np.flatnonzero(np.diff(keys)) + 1
            bounds = np.concatenate([[0], change, [len(ids)]])
            for s, e in itertools.pairwise(bounds):
                self._starts[int(keys[s])] = (int(s), int(e - s))
        xb = self.vectors()
        seg_start, seg_len, seg_key = [], [], []
        for key, (s, n) in self._starts.items():
            for o in range(0, n, SEGMENT):
                seg_start.append(s + o)
                seg_len.append(min(SEGMENT, n - o))
                seg_key.append(key)
        self._seg_start = np.asarray(seg_start, np.int64)
        self._seg_len = np.asarray(seg_len, np.int64)
        self._seg_key = np.asarray(seg_key, np.int64)
        cents = np.zeros((len(seg_start), self.dim), np.float32)
        radii = np.zeros(len(seg_start), np.float32)
        for i, (s, n) in enumerate(zip(seg_start, seg_len, strict=True)):
            block = xb[s : s + n]
            c = block.mean(0)
            cents[i] = c
            radii[i] = np.sqrt(((block - c) ** 2).sum(1).max())
        self._cents, self._radii = cents, radii * 1.0001 + 1e-6  # float32 rounding margin
        self._ivf = None

    def vectors(self) -> np.ndarray:
        """Zero-copy (ntotal, dim) view of faiss's flat storage, in storage order."""
        n = self._faiss.ntotal
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        flat = faiss.downcast_index(self._faiss.index)
        return faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)

    @property
    def num_videos(self) -> int:
        return len(self._starts)

    @property
    def num_clips(self) -> int:
        return int(self._faiss.ntotal)

    def __contains__(self, video_key: int) -> bool:
        return int(video_key) in self._starts

    def video_keys(self) -> list[int]:
        return list(self._starts)

    # --- updates ---------------------------------------------------------------------------------
    def _check_vectors(self, vectors: np.ndarray) -> np.ndarray:
        v = np.asarray(vectors, dtype=np.float32)
        if v.ndim == 1:
            v = v[None]
        if v.ndim != 2 or v.shape[1] != self.dim:
            raise IndexError_(f"vectors of shape {v.shape} do not fit an index of dimension {self.dim}")
        if not np.isfinite(v).all():
            raise IndexError_("vectors contain NaN or infinite values")
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return np.ascontiguousarray(v / np.maximum(norms, 1e-12))

    def add(self, video_key: int, vectors: np.ndarray) -> None:
        """Add (or replace) one video's clip vectors, L2-normalised here."""
        v = self._check_vectors(vectors)
        if len(v) == 0:
            raise IndexError_(f"video {video_key} has no clip vectors")
        if len(v) >= 1 << CLIP_BITS:
            raise IndexError_(f"video {video_key} has too many clips ({len(v)})")
        self.add_many({int(video_key): v})

    def add_many(self, videos: dict[int, np.ndarray]) -> None:
        for key in videos:
            if key in self._starts:
                self._remove_ids([key])
        ids = np.concatenate(
            [(np.int64(k) << CLIP_BITS) + np.arange(len(v), dtype=np.int64) for k, v in videos.items()]
        )
        vecs = np.concatenate([self._check_vectors(v) for v in videos.values()])
        self._faiss.add_with_ids(vecs, ids)
        self._rebuild_tables()

    def _remove_ids(self, keys: list[int]) -> None:
        ids = np.concatenate([self._ids[s : s + n] for s, n in (self._starts[k] for k in keys)])
        self._faiss.remove_ids(faiss.IDSelectorBatch(ids))

    def remove(self, video_key: int) -> None:
        if int(video_key) not in self._starts:
            raise IndexError_(f"video {video_key} is not in the index")
        self._remove_ids([int(video_key)])
        self._rebuild_tables()

    # --- search ----------------------------------------------------------------------------------
    def _prep_query(self, query: np.ndarray) -> np.ndarray:
        q = np.asarray(query, np.float32).reshape(-1, self.dim) if np.size(query) % self.dim == 0 else None
        if q is None or not np.isfinite(q).all():
            raise IndexError_(f"query must be finite with dimension {self.dim}")
        return q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)

    def clip_scores(self, query: np.ndarray, video_key: int) -> np.ndarray:
        """(N,) inner products of the (normalised) query with every clip of one video."""
        q = self._prep_query(query)[0]
        s, n = self._starts[int(video_key)]
        return self.vectors()[s : s + n] @ q

    def use_approximate(self) -> bool:
        return self.kind == "approximate" or (self.kind == "auto" and self.num_videos >= APPROX_MIN_VIDEOS)

    def search_videos(
        self, query: np.ndarray, k: int, approximate: bool | None = None
    ) -> list[list[VideoHit]]:
        """Top-k videos by max clip score for each query row (exact unless approximate)."""
        qs = self._prep_query(query)
        if self.num_videos == 0:
            return [[] for _ in qs]
        approx = self.use_approximate() if approximate is None else approximate
        return [self._search_one(q, min(k, self.num_videos), approx) for q in qs]

    def _search_one(self, q: np.ndarray, k: int, approximate: bool) -> list[VideoHit]:
        xb = self.vectors()
        if approximate:
            order = self._approx_candidates(q, k)
            bounds = None
        else:
            bounds = self._cents @ q + self._radii  # (S,) upper bound of every segment
            order = np.argsort(-bounds, kind="stable")
        best: dict[int, tuple[float, int]] = {}
        topk: list[tuple[float, int]] = []  # min-heap of (score, key) of the current top-k
        pos, batch = 0, 64
        while pos < len(order):
            if bounds is not None and len(topk) == k and topk[0][0] >= bounds[order[pos]]:
                break  # nothing left can enter the top-k or raise a top-k score
            segs = order[pos : pos + batch]
            pos += len(segs)
            starts, lens = self._seg_start[segs], self._seg_len[segs]
            rows = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lens, strict=True)])
            scores = xb[rows] @ q
            offs = np.concatenate([[0], np.cumsum(lens)])
            for j, seg in enumerate(segs):
                part = scores[offs[j] : offs[j + 1]]
                m = int(part.argmax())
                key = int(self._seg_key[seg])
                sc = float(part[m])
                if key not in best or sc > best[key][0]:
                    best[key] = (sc, int(rows[offs[j] + m] - self._starts[key][0]))
            topk = heapq.nlargest(k, ((s, key) for key, (s, _) in best.items()))
            heapq.heapify(topk)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:k]
        return [VideoHit(video_key=key, score=s, best_clip=c) for key, (s, c) in ranked]

    # --- approximate -------------------------------------------------------------------------------
    def _approx_candidates(self, q: np.ndarray, k: int, segments_per_video: int = 32) -> np.ndarray:
        if self._ivf is None:
            self._build_ivf()
        want = min(len(self._cents), max(512, k * segments_per_video))
        _, idx = self._ivf.search(np.append(q, np.float32(1.0))[None], want)
        return idx[0][idx[0] >= 0]

    def _build_ivf(self, nprobe: int | None = None) -> None:
        n = len(self._cents)
        nlist = max(1, min(4096, int(np.sqrt(n))))
        # [c, r] . [q, 1] = q.c + r: the IVF ranks segments by their exact-search bound.
        train = np.ascontiguousarray(np.concatenate([self._cents, self._radii[:, None]], axis=1))
        ivf = faiss.IndexIVFFlat(
            faiss.IndexFlatIP(self.dim + 1), self.dim + 1, nlist, faiss.METRIC_INNER_PRODUCT
        )
        rng = np.random.default_rng(0)
        sample = train[rng.choice(n, size=100 * nlist, replace=False)] if n > 100 * nlist else train
        ivf.train(sample)
        ivf.add(train)
        ivf.nprobe = nprobe or max(16, nlist // 4)
        self._ivf = ivf

    # --- persistence -----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write index + sidecar into new files, then rename: readers never see half an index."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        sidecar = {
            "format": FORMAT_VERSION,
            "dim": self.dim,
            "metric": "inner_product",
            "fingerprint": self.fingerprint,
            "kind": self.kind,
            "clip_bits": CLIP_BITS,
            "ntotal": self.num_clips,
            "videos": {str(k): n for k, (_, n) in self._starts.items()},
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
            raise IndexError_(f"no index in {d} ({exc.filename} missing)") from None
        except Exception as exc:
            raise IndexError_(f"unreadable index in {d}: {exc}") from None
        if side.get("format") != FORMAT_VERSION or side.get("clip_bits") != CLIP_BITS:
            raise IndexError_(f"{d}: index format {side.get('format')} is not supported")
        if raw.ntotal != side["ntotal"] or raw.d != side["dim"] or sum(side["videos"].values()) != raw.ntotal:
            raise IndexError_(
                f"{d}: index and sidecar disagree (faiss has {raw.ntotal} vectors of dim {raw.d}, "
                f"sidecar says {side['ntotal']} of dim {side['dim']}); rebuild it with `c2f library reindex`"
            )
        idx = cls(side["dim"], side["fingerprint"], side["kind"])
        idx._faiss = faiss.downcast_index(raw) if not isinstance(raw, faiss.IndexIDMap2) else raw
        if not isinstance(idx._faiss, faiss.IndexIDMap2):
            idx._faiss = faiss.IndexIDMap2.cast(raw) if hasattr(faiss.IndexIDMap2, "cast") else raw
        idx._rebuild_tables()
        if {str(k): n for k, (_, n) in idx._starts.items()} != side["videos"]:
            raise IndexError_(f"{d}: sidecar video table does not match the index ids")
        return idx


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

"""Coarse-to-fine search over a library: top videos by Eq. 3 on the index, then moments inside each.

The engine is backend-agnostic: the backend says what the index holds, how to encode the query and
how to localize; the engine handles snapshots, ranking, seconds and timings.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from c2f.errors import FeatureFileError, QueryError
from c2f.search.query import clean_query
from c2f.search.types import Moment, SearchResult, VideoResult

if TYPE_CHECKING:
    from c2f.index import ClipIndex, VideoHit
    from c2f.library import Library, VideoRecord
    from c2f.search.backends import SearchBackend
    from c2f.search.query import QueryEncoding


def search_library(
    library: Library,
    backend: SearchBackend,
    query: str,
    top_k_videos: int = 10,
    moments_per_video: int = 3,
) -> SearchResult:
    if top_k_videos < 1 or moments_per_video < 1:
        raise QueryError("top_k_videos and moments_per_video must be at least 1")
    clean_query(query)  # a bad query is reported before anything is loaded
    backend.check_library(library.settings)
    t0 = time.perf_counter()
    encoded = backend.encode_query(query)
    t1 = time.perf_counter()
    # Inside the block the index and the catalog snapshot cannot change under us.
    with library.snapshot(backend.fingerprint, backend.clip_vectors) as (index, records):
        t2 = time.perf_counter()
        hits = index.search_videos(encoded.vector, top_k_videos)[0]
        t3 = time.perf_counter()
        videos: list[VideoResult] = []
        for hit in hits:
            found = localize_hit(
                library, backend, index, records[hit.video_key], hit, encoded, moments_per_video
            )
            if found is not None:
                videos.append(found)
    t4 = time.perf_counter()
    all_moments = sorted(
        (m for v in videos for m in v.moments), key=lambda m: (-m.score, -m.video_score, m.video_id, m.start)
    )
    return SearchResult(
        query=encoded.text,
        backend_name=backend.name,
        moments=all_moments,
        videos=videos,
        notes=list(encoded.notes),
        timings={
            "encode_ms": (t1 - t0) * 1e3,
            "index_ms": (t2 - t1) * 1e3,
            "coarse_ms": (t3 - t2) * 1e3,
            "fine_ms": (t4 - t3) * 1e3,
            "total_ms": (t4 - t0) * 1e3,
        },
    )


def localize_hit(
    library: Library,
    backend: SearchBackend,
    index: ClipIndex,
    rec: VideoRecord,
    hit: VideoHit,
    encoded: QueryEncoding,
    moments_per_video: int,
) -> VideoResult | None:
    """The fine stage for one coarse hit: curves and moments in seconds (None if it was removed)."""
    try:
        feats = library.load_features(rec.video_id)
    except FeatureFileError:
        if library.catalog.by_key(rec.key) is None:
            return None  # removed while we searched
        raise
    similarity = index.clip_scores(encoded.vector, hit.video_key)  # (N,) the numbers Eq. 3 maxed
    loc = backend.localize(encoded, feats, similarity, moments_per_video)
    moments = [
        Moment(
            video_id=rec.video_id,
            name=rec.name,
            start=float(feats.clip_times[a, 0]),
            end=float(feats.clip_times[b, 1]),
            score=score,
            video_score=hit.score,
        )
        for a, b, score in loc.spans
    ]
    return VideoResult(
        video_id=rec.video_id,
        name=rec.name,
        path=rec.stored_path,
        video_score=hit.score,
        clip_times=feats.clip_times,
        similarity=similarity.astype(np.float64),
        importance=loc.importance,
        start_prob=loc.start_prob,
        end_prob=loc.end_prob,
        moments=moments,
    )

"""Coarse-to-fine search over a library: top videos by Eq. 3 on the index, then moments inside each.

The engine is backend-agnostic: the backend says what the index holds, how to encode the query and
how to localize; the engine handles snapshots, ranking, seconds and timings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

import numpy as np

from c2f.errors import FeatureFileError, QueryError
from c2f.ranking import order_cosines_with_ties
from c2f.search.by_example import (
    Query,
    check_backend,
    encode_example_query,
    mask_clips,
    overlaps,
    rank_by_example,
)
from c2f.search.query import clean_query
from c2f.search.types import Moment, SearchResult, VideoResult

if TYPE_CHECKING:
    from c2f.features import ClipFeatures, FeatureSettings
    from c2f.index import ClipIndex, VideoHit
    from c2f.search.backends import SearchBackend
    from c2f.search.query import QueryEncoding


class VideoEntry(Protocol):
    """What the engine reads of one catalog row (c2f.library.VideoRecord is one)."""

    @property
    def key(self) -> int: ...
    @property
    def video_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def stored_path(self) -> str: ...


class SearchableLibrary(Protocol):
    """What the engine needs of a library (c2f.library.Library is one): the library depends on
    the search package, never the reverse."""

    settings: FeatureSettings

    def snapshot(
        self, fingerprint: str, vectors_of: Callable[[ClipFeatures], np.ndarray]
    ) -> AbstractContextManager[tuple[ClipIndex, Mapping[int, VideoEntry]]]:
        """One backend's index and the catalog rows it matches, unchanged inside the block."""
        ...

    def load_features(self, video_id: str) -> ClipFeatures: ...

    def get(self, video_id: str) -> VideoEntry:
        """The catalog row of a video (LibraryError when there is none)."""
        ...

    def is_listed(self, key: int) -> bool:
        """False once the video of `key` was removed."""
        ...


def search_library(
    library: SearchableLibrary,
    backend: SearchBackend,
    query: str | Query,
    top_k_videos: int = 10,
    moments_per_video: int = 3,
) -> SearchResult:
    """`query`: a sentence, or a Query (a moment or a picture, alone or mixed with text:
    c2f.search.by_example)."""
    if top_k_videos < 1 or moments_per_video < 1:
        raise QueryError("top_k_videos and moments_per_video must be at least 1")
    if isinstance(query, Query) and not query.is_example:
        query = query.text  # type: ignore[assignment]  # text alone
    if not isinstance(query, Query):
        clean_query(query)  # a bad query is reported before anything is loaded
    else:
        check_backend(backend)
    backend.check_library(library.settings)
    t0 = time.perf_counter()
    if isinstance(query, Query):
        encoded = encode_example_query(library, backend, query)
    else:
        encoded = backend.encode_query(query)
    t1 = time.perf_counter()
    # Inside the block the index and the catalog snapshot cannot change under us.
    with library.snapshot(backend.fingerprint, backend.clip_vectors) as (index, records):
        t2 = time.perf_counter()
        rank = getattr(backend, "rank_videos", None)  # a backend may rank on its own curve (speech)
        if encoded.by_example:
            hits = rank_by_example(library, backend, index, records, encoded, top_k_videos)
        elif rank is not None:
            hits = rank(library, index, records, encoded, top_k_videos)
        else:
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
    # Best moment first; near-ties (float noise) go to the better-ranked video, then the earlier moment.
    flat = [(rank, m) for rank, v in enumerate(videos) for m in v.moments]
    order = order_cosines_with_ties(
        [m.score for _, m in flat],
        [[r for r, _ in flat], [m.start for _, m in flat], [m.end - m.start for _, m in flat]],
    )
    all_moments = [flat[i][1] for i in order]
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
    library: SearchableLibrary,
    backend: SearchBackend,
    index: ClipIndex,
    rec: VideoEntry,
    hit: VideoHit,
    encoded: QueryEncoding,
    moments_per_video: int,
) -> VideoResult | None:
    """The fine stage for one coarse hit: curves and moments in seconds (None if it was removed)."""
    try:
        feats = library.load_features(rec.video_id)
    except FeatureFileError:
        if not library.is_listed(rec.key):
            return None  # removed while we searched
        raise
    similarity = index.clip_scores(encoded.vector, hit.video_key)  # (N,) the numbers Eq. 3 maxed
    curve = getattr(backend, "clip_curve", None)
    left_out = encoded.exclude.get(rec.video_id)
    if encoded.by_example:
        similarity = encoded.scale * similarity.astype(np.float64)  # a mixed query's weighted cosines
        if left_out is not None:  # the source moment: never part of a found moment
            similarity = mask_clips(similarity, *left_out)
    elif curve is not None:  # e.g. visual fused with speech: the curve the backend ranked videos by
        similarity = curve(encoded, feats, similarity)
    loc = backend.localize(encoded, feats, similarity, moments_per_video)
    if left_out is not None:
        loc.spans = [sp for sp in loc.spans if not overlaps(sp, *left_out)]
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

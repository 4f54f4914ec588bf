"""Coarse-to-fine search: backends (zero-shot CLIP, learned C2F, tiny), localizer, engine, results."""

from c2f.search.backends import MODES, SearchBackend, list_checkpoints, load_backend
from c2f.search.by_example import MomentRef, Query, parse_moment_ref
from c2f.search.types import Moment, SearchResult, VideoResult

__all__ = [
    "MODES",
    "Moment",
    "MomentRef",
    "Query",
    "SearchBackend",
    "SearchResult",
    "VideoResult",
    "list_checkpoints",
    "load_backend",
    "parse_moment_ref",
]

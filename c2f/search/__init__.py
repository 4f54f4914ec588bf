"""Coarse-to-fine search: backends (zero-shot CLIP, learned C2F, tiny), localizer, engine, results."""

from c2f.search.backends import MODES, SearchBackend, list_checkpoints, load_backend
from c2f.search.types import Moment, SearchResult, VideoResult

__all__ = [
    "MODES",
    "Moment",
    "SearchBackend",
    "SearchResult",
    "VideoResult",
    "list_checkpoints",
    "load_backend",
]

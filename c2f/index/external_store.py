"""What the indexes kept in an external vector store (qdrant_store, milvus_store) share: the listing
of complete videos, and the pointer a saved index version holds instead of the vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from c2f.index.clip_index import ClipIndex, ClipIndexError

if TYPE_CHECKING:
    from typing_extensions import Self

POINTER = "store.json"


class ExternalIndex:
    """The part of an index in an external store that does not depend on the store: the listing
    (num_videos, num_clips, `in`, video_keys over `_lengths`, {video key: clips} of the videos whose
    every clip is stored: a pending video is not listed) and the saved pointer (save/load)."""

    STORE: str  # the store's name in the pointer
    uri: str
    dim: int
    fingerprint: str
    _lengths: dict[int, int]

    def __init__(self, uri: str, dim: int, fingerprint: str) -> None:
        raise NotImplementedError

    def _flush(self) -> None:
        """Make every write so far durable in the store (before a pointer to it is saved)."""
        raise NotImplementedError

    @property
    def num_videos(self) -> int:
        return len(self._lengths)

    @property
    def num_clips(self) -> int:
        return sum(self._lengths.values())

    def __contains__(self, video_key: int) -> bool:
        return int(video_key) in self._lengths

    def video_keys(self) -> list[int]:
        return sorted(self._lengths)

    # the same query checks as faiss's index (shape, finite, not zero), normalised: (B, dim)
    _prep_query = ClipIndex._prep_query

    def _search_queries(self, query: np.ndarray, k: int) -> tuple[np.ndarray, int]:
        """(B, dim) checked, normalised queries and k capped at the listed videos (0: none listed)."""
        if k < 1:
            raise ClipIndexError(f"k must be at least 1, not {k}")
        return self._prep_query(query), min(k, self.num_videos)

    def save(self, directory: str | Path) -> None:
        """A saved version is a pointer to the store's collections (the vectors are the store's to keep)."""
        self._flush()
        write_pointer(directory, self.STORE, self.uri, self.dim, self.fingerprint)

    @classmethod
    def load(cls, directory: str | Path) -> Self:
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

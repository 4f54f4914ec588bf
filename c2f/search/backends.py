"""Search backends behind one interface, and `load_backend(mode)` that picks one.

- "zero-shot": pretrained CLIP (c2f.search.zero_shot); needs no C2F checkpoint.
- "tiny": the same with the tiny random CLIP, for tests: its results are meaningless.
- "learned": a C2F checkpoint from checkpoints/ (c2f.search.learned).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from c2f.errors import C2FError, CheckpointError
from c2f.features import ClipFeatures, FeatureSettings, get_preset
from c2f.search.localizer import Localization
from c2f.search.query import QueryEncoding
from c2f.weights import checkpoints_dir

MODES = ("zero-shot", "learned", "tiny")


class SearchBackend(Protocol):
    name: str  # shown in results and in the UI
    description: str  # one or two sentences for the UI
    is_tiny: bool  # random tiny weights: results are meaningless
    fingerprint: str  # names the index built for this backend (indexes/<fingerprint>/)
    feature_settings: FeatureSettings  # the features it reads
    example_queries: bool  # takes a moment or a picture as the query (c2f.search.by_example)

    def check_library(self, settings: FeatureSettings) -> None:
        """Raise FeatureMismatchError when a library's features do not fit this backend."""
        ...

    def clip_vectors(self, feats: ClipFeatures) -> np.ndarray:
        """(N, d) vectors of one video in the retrieval space (what the index holds)."""
        ...

    def encode_query(self, query: str) -> QueryEncoding:
        """Check and encode a query (QueryError for unusable text)."""
        ...

    def localize(
        self, query: QueryEncoding, feats: ClipFeatures, similarity: np.ndarray, max_spans: int
    ) -> Localization:
        """Importance, start/end curves and ranked spans of one video for one query."""
        ...


@dataclass(frozen=True)
class IndexSpec:
    """What one clip index holds: its name (indexes/<fingerprint>/) and each video's vectors in it."""

    fingerprint: str
    vectors_of: Callable[[ClipFeatures], np.ndarray]  # (N, d) per video


def default_index_for(settings: FeatureSettings) -> IndexSpec:
    """The index a library keeps current while it adds videos: the default mode's (zero-shot CLIP),
    known from the library's feature settings without loading CLIP."""
    from c2f.search.zero_shot import clip_stream_vectors, zero_shot_fingerprint

    return IndexSpec(zero_shot_fingerprint(settings), clip_stream_vectors)


def list_checkpoints(dir: str | Path | None = None) -> list[str]:
    """Names of the C2F checkpoints (folders with config.json + model.safetensors) under `dir`."""
    root = Path(dir) if dir is not None else checkpoints_dir()
    if not root.is_dir():
        return []
    return sorted(
        p.parent.name for p in root.glob("*/config.json") if (p.parent / "model.safetensors").is_file()
    )


def resolve_checkpoint(checkpoint: str | Path | None) -> Path:
    """A checkpoint folder from a path or a name under checkpoints/ (the first one when None)."""
    if checkpoint is None:
        names = list_checkpoints()
        if not names:
            raise CheckpointError(
                f"no C2F checkpoint in {checkpoints_dir()}: train one with `python -m c2f train`, put a "
                "checkpoint folder (config.json + model.safetensors) there, or use --mode zero-shot"
            )
        return checkpoints_dir() / names[0]
    path = Path(checkpoint)
    if not path.exists() and (checkpoints_dir() / path).exists():
        path = checkpoints_dir() / path
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise CheckpointError(
            f"{path} is not a C2F checkpoint (a folder with config.json and model.safetensors); "
            f"known: {list_checkpoints() or 'none'}"
        )
    return path


def load_backend(mode: str, checkpoint: str | Path | None = None, device: str | None = None) -> SearchBackend:
    """mode: "zero-shot" (CLIP ViT-B/32), "tiny" (random tiny CLIP) or "learned" (a C2F checkpoint)."""
    from c2f.search.zero_shot import ZeroShotBackend

    if mode == "tiny":
        return ZeroShotBackend(get_preset("tiny-clip-only"), device)
    if mode == "zero-shot":
        return ZeroShotBackend(get_preset("clip-only"), device)
    if mode == "learned":
        path = resolve_checkpoint(checkpoint)
        try:
            from c2f.search.learned import LearnedBackend
        except ImportError as exc:  # the C2F model package is not part of this build yet
            raise CheckpointError(
                f"the learned backend is not available in this build ({exc}); use --mode zero-shot"
            ) from exc

        return LearnedBackend(path, device)
    raise C2FError(f"unknown search mode {mode!r}: use one of {', '.join(MODES)}")

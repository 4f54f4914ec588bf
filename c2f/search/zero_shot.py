"""Zero-shot backend: CLIP image features (the "clip" stream) against CLIP text embeddings.

Coarse = Eq. 3 (max over a video's clips of <q, clip>); fine = the training-free localizer on the
query-clip similarity curve. Needs only the pretrained CLIP weights (or the tiny random CLIP).
"""

from __future__ import annotations

import hashlib

import numpy as np

from c2f.errors import FeatureMismatchError
from c2f.features import ClipFeatures, FeatureSettings
from c2f.search.localizer import Localization, localize_curve
from c2f.search.query import QueryEncoding, clean_query


def clip_stream_key(settings: FeatureSettings) -> tuple:
    """Every setting that changes the "clip" stream (the S3D settings do not)."""
    return (
        settings.clip_model,
        settings.clip_weights,
        settings.clip_seconds,
        settings.clip_frames_per_clip,
        settings.clip_image_size,
    )


def zero_shot_fingerprint(settings: FeatureSettings) -> str:
    """Names the zero-shot index of a library; known without loading CLIP."""
    digest = hashlib.sha256(repr(clip_stream_key(settings)).encode()).hexdigest()[:12]
    return f"zeroshot-{digest}"


def clip_stream_vectors(feats: ClipFeatures) -> np.ndarray:
    return feats.stream("clip")  # (N, d_clip), L2-normalised


class ZeroShotBackend:
    def __init__(self, settings: FeatureSettings, device: str | None = None) -> None:
        from c2f.encoders import create_clip_encoder

        self.feature_settings = settings
        self.encoder = create_clip_encoder(settings, device)  # MissingWeightsError when absent offline
        self.is_tiny = settings.tiny
        self.fingerprint = zero_shot_fingerprint(settings)
        if self.is_tiny:
            self.name = "TINY TEST MODE (random CLIP)"
            self.description = (
                "TINY TEST MODE: a tiny randomly initialised CLIP, for tests and smoke runs. "
                "Its results are meaningless."
            )
        else:
            self.name = f"zero-shot CLIP {settings.clip_model} ({settings.clip_weights})"
            self.description = (
                "Zero-shot: CLIP ranks videos by their best clip (Eq. 3); a training-free localizer "
                "finds the spans where the query-clip similarity curve stands out. No C2F checkpoint needed."
            )

    def check_library(self, settings: FeatureSettings) -> None:
        if clip_stream_key(settings) != clip_stream_key(self.feature_settings):
            mine = self.feature_settings
            raise FeatureMismatchError(
                f"this library holds features of preset {settings.preset!r} ({settings.clip_model}, "
                f"{settings.clip_weights}); the {self.name} backend reads {mine.clip_model} "
                f"({mine.clip_weights}) CLIP features: use a library made with preset {mine.preset!r}"
            )

    def clip_vectors(self, feats: ClipFeatures) -> np.ndarray:
        return clip_stream_vectors(feats)

    def encode_query(self, query: str) -> QueryEncoding:
        text = clean_query(query)
        notes = []
        budget = self.encoder.context_length - 2  # start and end tokens
        n_tokens = len(self.encoder.tokenizer.encode(text))
        if n_tokens > budget:
            notes.append(f"the query is long ({n_tokens} tokens): only its first {budget} tokens were used")
        emb = self.encoder.encode_text([text])
        return QueryEncoding(text=text, vector=emb.pooled[0].numpy(), notes=notes)

    def localize(
        self, query: QueryEncoding, feats: ClipFeatures, similarity: np.ndarray, max_spans: int
    ) -> Localization:
        return localize_curve(similarity, max_spans=max_spans)

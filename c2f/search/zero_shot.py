"""Zero-shot backend: CLIP image features (the "clip" stream) against CLIP text embeddings.

Coarse = Eq. 3 (max over a video's clips of <q, clip>); fine = the training-free localizer on the
query-clip similarity curve. Needs only the pretrained CLIP weights (or the tiny random CLIP).

Match modes (`with_match`): "visual" (the default, CLIP only), "speech" or "both": the per-clip curve
becomes (1 - w) * visual + w * speech (c2f.speech.fusion; w = 1 for "speech"), where speech is the
sentence-encoder cosine between the query and the words said in the clip (the video's subtitles or
transcript). Coarse ranking is then Eq. 3 on the fused curve, exactly: speech scores are >= 0, so a
video without words scores (1 - w) * its visual score and cannot beat the visual top-k's fused
scores; the candidates are the visual top-k plus every video with words, each scored in full.
"""

from __future__ import annotations

import copy
import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from c2f.errors import FeatureMismatchError
from c2f.features import ClipFeatures, FeatureSettings
from c2f.search.localizer import Localization, localize_curve
from c2f.search.query import QueryEncoding, clean_query

if TYPE_CHECKING:
    from c2f.index import ClipIndex, VideoHit
    from c2f.search.engine import SearchableLibrary, VideoEntry
    from c2f.speech.sentence import SentenceEncoder

SPEECH_CACHE_VIDEOS = 4096  # videos whose cue embeddings are kept in memory (LRU)


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
    example_queries = True  # a moment or a picture can be the query: the index is CLIP's image space

    def __init__(self, settings: FeatureSettings, device: str | None = None) -> None:
        from c2f.encoders import create_clip_encoder
        from c2f.speech.sentence import DEFAULT_SENTENCE_MODEL, TINY_SENTENCE_MODEL

        self.feature_settings = settings
        self.device = device
        self.encoder = create_clip_encoder(settings, device)  # MissingWeightsError when absent offline
        self.match, self.speech_weight = "visual", 0.0
        self.sentence_model = TINY_SENTENCE_MODEL if settings.tiny else DEFAULT_SENTENCE_MODEL
        self._speech: dict = {"encoder": None, "cues": OrderedDict()}  # shared by every with_match view
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

    def with_match(self, match: str, speech_weight: float | None = None) -> ZeroShotBackend:
        """A view of this backend (same encoders, same index) that scores clips by `match`:
        "visual", "speech" or "both" with weight `speech_weight` (default DEFAULT_SPEECH_WEIGHT).
        The sentence encoder is loaded on the first non-visual view (MissingWeightsError offline)."""
        from c2f.speech.fusion import DEFAULT_SPEECH_WEIGHT, weight_for

        weight = weight_for(match, DEFAULT_SPEECH_WEIGHT if speech_weight is None else speech_weight)
        view = copy.copy(self)
        view.match, view.speech_weight = match, weight
        if match != "visual":
            view.sentence_encoder()
            view.name = f"{self.name} + speech ({match}, w={weight:g})"
        return view

    def sentence_encoder(self) -> SentenceEncoder:
        if self._speech["encoder"] is None:
            from c2f.speech.sentence import SentenceEncoder

            self._speech["encoder"] = SentenceEncoder(self.sentence_model, self.device)
        return self._speech["encoder"]

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
        extra = {}
        if self.speech_weight > 0:
            extra["speech"] = self.sentence_encoder().encode([text])[0]  # (d_s,)
        return QueryEncoding(text=text, vector=emb.pooled[0].numpy(), notes=notes, extra=extra)

    def encode_image(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) RGB, short side already at the decoder's size -> (d,) unit CLIP image vector."""
        return self.encoder.encode_images(pixels[None])[0].numpy()

    # --- speech ----------------------------------------------------------------------------------
    def _cues(self, feats: ClipFeatures) -> tuple[np.ndarray, np.ndarray]:
        """(owners (N,), cue embeddings (S, d_s)) of one video, cached per video and cue text."""
        from c2f.speech.fusion import clip_owners

        key = (feats.video_id, hashlib.sha256(repr(feats.subtitles).encode()).hexdigest())
        cache: OrderedDict = self._speech["cues"]
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        owners = clip_owners(feats.subtitles, feats.num_clips, feats.settings.clip_seconds)
        texts = [s.text for s in feats.subtitles]
        value = (owners, self.sentence_encoder().encode(texts))
        cache[key] = value
        while len(cache) > SPEECH_CACHE_VIDEOS:
            cache.popitem(last=False)
        return value

    def clip_curve(self, query: QueryEncoding, feats: ClipFeatures, visual: np.ndarray) -> np.ndarray:
        """(N,) the clip scores this view ranks and localizes on: visual, or fused with speech."""
        if self.speech_weight == 0:
            return visual
        from c2f.speech.fusion import fuse, speech_curve

        owners, cues = self._cues(feats)
        return fuse(visual, speech_curve(query.extra["speech"], cues, owners), self.speech_weight)

    def rank_videos(
        self,
        library: SearchableLibrary,
        index: ClipIndex,
        records: Mapping[int, VideoEntry],
        query: QueryEncoding,
        top_k: int,
    ) -> list[VideoHit]:
        """Top-k videos by the max of `clip_curve` (Eq. 3 on the fused curve), ties by video key."""
        from c2f.index import VideoHit
        from c2f.ranking import order_cosines_with_ties

        visual_hits = index.search_videos(query.vector, top_k)[0]
        if self.speech_weight == 0:
            return visual_hits
        spoken = [k for k, rec in records.items() if getattr(rec, "has_subtitles", True)]
        candidates = sorted({h.video_key for h in visual_hits} | set(spoken))
        hits = []
        for key in candidates:
            feats = library.load_features(records[key].video_id)
            curve = self.clip_curve(query, feats, index.clip_scores(query.vector, key))
            best = int(np.argmax(curve)) if len(curve) else 0
            hits.append(VideoHit(key, float(curve[best]) if len(curve) else 0.0, best))
        coarse = np.lexsort(([h.video_key for h in hits], [-h.score for h in hits]))[: 4 * top_k]  # exact order
        near = [hits[i] for i in coarse]  # then near-ties (float noise) by video key, as the index does
        order = order_cosines_with_ties([h.score for h in near], [[h.video_key for h in near]])
        return [near[i] for i in order[:top_k]]

    def localize(
        self, query: QueryEncoding, feats: ClipFeatures, similarity: np.ndarray, max_spans: int
    ) -> Localization:
        """`similarity`: the curve the engine got from `clip_curve` (fused in a speech mode)."""
        return localize_curve(similarity, max_spans=max_spans)

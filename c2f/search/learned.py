"""Learned backend: a C2F checkpoint. Coarse = Eq. 3 on the normalised V_temp vectors the index holds;
fine = the checkpoint's localizer (fusion: importance S_h and start/end probabilities) with HERO
moment scoring and temporal NMS inside each video.

Every number comes from c2f.eval.predict (`Predictor`), the one prediction path that
`c2f evaluate --checkpoint` also runs: a video is encoded alone in consecutive windows of max_clips
clips (hours of video with bounded memory, nothing cut), a query alone, the index's top videos are
rescored by `eq3_score` and localized in one batch in rank order. So a search's videos, scores and
start/end curves are the ones of the TVR prediction file for the same query.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from c2f.data.dataset import text_token_encoder, video_input
from c2f.errors import CheckpointError
from c2f.eval.predict import EncodedQuery, Predictor, eq3_score, rank_by_score, retrieval_vectors
from c2f.features import ClipFeatures, FeatureSettings
from c2f.index import VideoHit
from c2f.model.checkpoint import checkpoint_fingerprint, load_checkpoint
from c2f.model.decode import moment_scores, temporal_nms, top_moments
from c2f.search.localizer import Localization
from c2f.search.query import QueryEncoding, clean_query

_CACHED_VIDEOS = 128  # V_temp of recently searched videos (a 100-video coarse stage fits)


class LearnedBackend:
    example_queries = False  # its localizer reads the query's words: no moment or picture queries

    def __init__(self, checkpoint: str | Path, device: str | None = None) -> None:
        path = Path(checkpoint)
        self.model, self.meta = load_checkpoint(path, device)
        if not self.meta.get("feature_settings"):
            raise CheckpointError(
                f"{path.name} was trained on synthetic features: it cannot search a video library"
            )
        self.feature_settings = FeatureSettings.from_dict(self.meta["feature_settings"])
        self.encode_tokens = text_token_encoder(self.meta["text_encoder"], self.feature_settings, device)
        self.predictor = Predictor(self.model, self.encode_tokens)
        self.is_tiny = self.feature_settings.tiny
        self.fingerprint = f"c2f-{checkpoint_fingerprint(path)}"
        cfg = self.model.cfg
        self.name = f"learned C2F {path.name} ({cfg.localizer} localizer)" + (
            " TINY TEST MODE" if self.is_tiny else ""
        )
        self.description = (
            ("TINY TEST MODE: tiny random models, results are meaningless. " if self.is_tiny else "")
            + f"Learned: the C2F checkpoint '{path.name}' ranks videos with its HERO encoder (Eq. 3) and "
            f"localizes moments with its {cfg.localizer} localizer."
        )
        self._v_temp: OrderedDict[str, torch.Tensor] = OrderedDict()

    def check_library(self, settings: FeatureSettings) -> None:
        self.feature_settings.check_compatible(settings, what="the library's features")

    def _encode_video(self, feats: ClipFeatures) -> torch.Tensor:
        """V_temp (N, d) of one video (windows of max_clips clips), cached by content."""
        key = f"{feats.video_id}:{feats.video.content_hash}"
        if key in self._v_temp:
            self._v_temp.move_to_end(key)
            return self._v_temp[key]
        v_temp = self.predictor.video_states(video_input(feats, self.encode_tokens))
        self._v_temp[key] = v_temp
        while len(self._v_temp) > _CACHED_VIDEOS:
            self._v_temp.popitem(last=False)
        return v_temp

    def clip_vectors(self, feats: ClipFeatures) -> np.ndarray:
        return retrieval_vectors(self._encode_video(feats))

    def encode_query(self, query: str) -> QueryEncoding:
        text = clean_query(query)
        enc = self.predictor.encode_query(text)
        notes = [f"the query is long: only its first {self.predictor.max_query_tokens} tokens were used"]
        return QueryEncoding(
            text=text, vector=enc.vector, notes=notes if enc.truncated else [], extra={"query": enc}
        )

    def rank_videos(self, library, index, records, encoded: QueryEncoding, top_k: int) -> list[VideoHit]:
        """The index's top videos, rescored by `eq3_score` on this backend's vectors and localized in
        one batch in rank order, exactly as c2f.eval.predict does (the curves wait in `encoded`)."""
        hits = index.search_videos(encoded.vector, top_k)[0]
        if not hits:
            return []
        states = [self._encode_video(library.load_features(records[h.video_key].video_id)) for h in hits]
        scores = [eq3_score(retrieval_vectors(s), encoded.vector) for s in states]
        order = rank_by_score(scores, [h.video_key for h in hits], states[0].shape[1])
        query: EncodedQuery = encoded.extra["query"]
        bounds = self.predictor.localize(query, [states[i] for i in order])
        encoded.extra["localized"] = {
            records[hits[i].video_key].video_id: (b, scores[i]) for i, b in zip(order, bounds, strict=True)
        }
        return [VideoHit(hits[i].video_key, scores[i], hits[i].best_clip) for i in order]

    def localize(
        self, query: QueryEncoding, feats: ClipFeatures, similarity: np.ndarray, max_spans: int
    ) -> Localization:
        found = query.extra.get("localized", {}).get(feats.video_id)
        if found is None:  # a video outside the coarse stage (e.g. the right video for SVMR): alone
            states = self._encode_video(feats)
            found = (
                self.predictor.localize(query.extra["query"], [states])[0],
                eq3_score(retrieval_vectors(states), query.vector),
            )
        bounds, video_score = found
        st, ed = bounds.start_prob, bounds.end_prob
        if bounds.importance is not None:
            importance = bounds.importance
        else:  # Base localizer: the local similarity curve, min-max normalised
            s = np.asarray(similarity, np.float64)
            importance = (s - s.min()) / (s.max() - s.min()) if s.max() > s.min() else np.full(len(s), 0.5)
        i, j, sc = top_moments(moment_scores(st, ed, video_score), 200)
        if len(i) == 0:
            return Localization(importance, st, ed, [(0, len(st) - 1, 0.0)])
        keep = temporal_nms(np.stack([i, j + 1], 1).astype(float), sc, 0.5)[:max_spans]
        return Localization(importance, st, ed, [(int(i[k]), int(j[k]), float(sc[k])) for k in keep])


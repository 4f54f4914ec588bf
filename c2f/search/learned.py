"""Learned backend: a C2F checkpoint. Coarse = Eq. 3 on the normalised V_temp vectors the index holds;
fine = the checkpoint's localizer (fusion: importance S_h and start/end probabilities) with HERO
moment scoring and temporal NMS inside each video.

Videos longer than the model's `max_clips` are encoded in consecutive windows of max_clips clips
(each with its own positions), so hours of video work with bounded memory.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from c2f.data.dataset import text_token_encoder, video_input
from c2f.errors import CheckpointError
from c2f.features import ClipFeatures, FeatureSettings
from c2f.model.c2f import VideoInput, build_video_batch
from c2f.model.checkpoint import checkpoint_fingerprint, load_checkpoint
from c2f.model.decode import moment_scores, temporal_nms, top_moments
from c2f.model.inference import pad_tokens
from c2f.search.localizer import Localization
from c2f.search.query import QueryEncoding, clean_query


class LearnedBackend:
    def __init__(self, checkpoint: str | Path, device: str | None = None) -> None:
        path = Path(checkpoint)
        self.model, self.meta = load_checkpoint(path, device)
        if not self.meta.get("feature_settings"):
            raise CheckpointError(
                f"{path.name} was trained on synthetic features: it cannot search a video library"
            )
        self.feature_settings = FeatureSettings.from_dict(self.meta["feature_settings"])
        self.encode_tokens = text_token_encoder(self.meta["text_encoder"], self.feature_settings, device)
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

    @torch.inference_mode()
    def _encode_video(self, feats: ClipFeatures) -> torch.Tensor:
        """V_temp (N, d) of one video, in windows of max_clips clips."""
        key = f"{feats.video_id}:{feats.video.content_hash}"
        if key in self._v_temp:
            self._v_temp.move_to_end(key)
            return self._v_temp[key]
        full = video_input(feats, self.encode_tokens)
        w = self.model.cfg.max_clips
        windows = []
        for s in range(0, feats.num_clips, w):
            segs = [(c[(c >= s) & (c < s + w)] - s, t) for c, t in full.segments]
            segs = [(c, t) for c, t in segs if len(c)]
            windows.append(VideoInput(full.feats[s : s + w], segs))
        vb = build_video_batch(windows, self.model.cfg.token_dim, w).to(self.model.device)
        v, m = self.model.encode_videos(vb)
        v_temp = v[m].float().cpu()  # (N, d): windows back to back
        self._v_temp[key] = v_temp
        while len(self._v_temp) > 64:
            self._v_temp.popitem(last=False)
        return v_temp

    def clip_vectors(self, feats: ClipFeatures) -> np.ndarray:
        return F.normalize(self._encode_video(feats), dim=-1).numpy()

    @torch.inference_mode()
    def encode_query(self, query: str) -> QueryEncoding:
        text = clean_query(query)
        tokens = self.encode_tokens([text])[0]
        notes = []
        limit = self.model.cfg.max_tokens + 2
        if len(tokens) > limit:
            notes.append(f"the query is long: only its first {limit} tokens were used")
        tok, mask = pad_tokens([tokens], limit)
        tok, mask = tok.to(self.model.device), mask.to(self.model.device)
        q, states = self.model.encode_queries(tok, mask)
        vec = F.normalize(q.float(), dim=-1)[0].cpu().numpy()
        return QueryEncoding(
            text=text, vector=vec, notes=notes, extra={"q": q, "states": states, "mask": mask}
        )

    @torch.inference_mode()
    def localize(
        self, query: QueryEncoding, feats: ClipFeatures, similarity: np.ndarray, max_spans: int
    ) -> Localization:
        v = self._encode_video(feats).to(self.model.device)[None]  # (1, N, d)
        vmask = torch.ones(v.shape[:2], dtype=torch.bool, device=v.device)
        out = self.model.localize(
            v.to(query.extra["q"].dtype), vmask, query.extra["q"], query.extra["states"], query.extra["mask"]
        )
        st = out.start_logits.float().softmax(-1)[0].cpu().numpy()
        ed = out.end_logits.float().softmax(-1)[0].cpu().numpy()
        if out.importance is not None:
            importance = out.importance.float()[0].cpu().numpy()
        else:  # Base localizer: the local similarity curve, min-max normalised
            s = np.asarray(similarity, np.float64)
            importance = (s - s.min()) / (s.max() - s.min()) if s.max() > s.min() else np.full(len(s), 0.5)
        video_score = float(np.max(similarity))
        i, j, sc = top_moments(moment_scores(st, ed, video_score), 200)
        if len(i) == 0:
            return Localization(importance, st, ed, [(0, len(st) - 1, 0.0)])
        keep = temporal_nms(np.stack([i, j + 1], 1).astype(float), sc, 0.5)[:max_spans]
        return Localization(importance, st, ed, [(int(i[k]), int(j[k]), float(sc[k])) for k in keep])

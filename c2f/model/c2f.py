"""The C2F model: HERO encoder (coarse retrieval, Eq. 3) + a Base or Fusion localizer (fine)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from c2f.model.config import C2FConfig
from c2f.model.encoder import HeroEncoder, VideoBatch, video_scores
from c2f.model.localizers import BaseLocalizer, FusionLocalizer, LocalizerOutput


@dataclass
class VideoInput:
    """One video for the model: raw clip features and its f_cross segments."""

    feats: np.ndarray  # (N, Dv)
    # (clip indices, subtitle token embeddings (L, Dt) or None), one f_cross pass each; clips in no
    # segment (a subtitled video's unmatched clips, HERO) get no f_cross output, only the residual
    segments: list[tuple[np.ndarray, np.ndarray | None]]


def video_only_segments(num_clips: int, group: int = 5) -> list[tuple[np.ndarray, None]]:
    """A video without subtitles: groups of 5 clips with no text (HERO)."""
    return [(np.arange(s, min(s + group, num_clips)), None) for s in range(0, num_clips, group)]


def build_video_batch(videos: list[VideoInput], token_dim: int, max_clips: int | None = None) -> VideoBatch:
    n = max(len(v.feats) for v in videos)
    if max_clips:
        n = min(n, max_clips)
    dv = videos[0].feats.shape[1]
    feats = torch.zeros(len(videos), n, dv)
    mask = torch.zeros(len(videos), n, dtype=torch.bool)
    segs: list[np.ndarray] = []
    toks: list[np.ndarray | None] = []
    for b, v in enumerate(videos):
        m = min(len(v.feats), n)
        feats[b, :m] = torch.as_tensor(v.feats[:m], dtype=torch.float32)
        mask[b, :m] = True
        for clips, tokens in v.segments:
            clips = clips[clips < m]
            if len(clips):
                segs.append(b * n + clips)
                toks.append(tokens)
    if not segs:  # no clip of the batch in any segment (subtitles outside every video): one empty pass
        segs.append(np.zeros(0, dtype=np.int64))
        toks.append(None)
    lc = max(1, max(len(s) for s in segs))
    lt = max((len(t) for t in toks if t is not None), default=0)
    seg_clips = torch.full((len(segs), lc), -1, dtype=torch.long)
    seg_tokens = torch.zeros(len(segs), lt, token_dim)
    seg_mask = torch.zeros(len(segs), lt, dtype=torch.bool)
    for i, (s, t) in enumerate(zip(segs, toks, strict=True)):
        seg_clips[i, : len(s)] = torch.as_tensor(s)
        if t is not None and len(t):
            seg_tokens[i, : len(t)] = torch.as_tensor(t[:lt], dtype=torch.float32)
            seg_mask[i, : len(t)] = True
    return VideoBatch(feats, mask, seg_clips, seg_tokens, seg_mask)


class C2FModel(nn.Module):
    def __init__(self, cfg: C2FConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = HeroEncoder(cfg)
        self.localizer = FusionLocalizer(cfg) if cfg.localizer == "fusion" else BaseLocalizer(cfg)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode_videos(self, vb: VideoBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """-> V_temp (B, N, d), mask (B, N)."""
        return self.encoder.encode_videos(vb), vb.mask

    def encode_queries(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> q (B, d), the query's token embeddings W^emb (B, L, d) that `localize` takes."""
        return self.encoder.encode_queries(tokens, mask)

    @staticmethod
    def video_scores(q: torch.Tensor, v_temp: torch.Tensor, v_mask: torch.Tensor) -> torch.Tensor:
        """Eq. 3, (Q, d) x (V, N, d) -> (Q, V)."""
        return video_scores(q, v_temp, v_mask)

    def localize(self, v_temp, v_mask, q, q_emb, q_mask) -> LocalizerOutput:
        """Paired rows: video b with query b; q and q_emb as `encode_queries` gives them."""
        return self.localizer(v_temp, v_mask, q, q_emb, q_mask)

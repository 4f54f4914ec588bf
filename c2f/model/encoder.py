"""HERO-style encoder: clip/token embedders, the cross-modal transformer f_cross over subtitle
segments (paper Eq. 1), the temporal transformer f_temp (Eq. 2) and the query encoder."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from c2f.model.config import C2FConfig

NEG = -1e4  # added to masked logits: large but safe in half precision


@dataclass
class VideoBatch:
    feats: torch.Tensor  # (B, N, Dv) raw clip features
    mask: torch.Tensor  # (B, N) bool, True for real clips
    seg_clips: torch.Tensor  # (S, Lc) long: flat index b * N + t of each clip of a segment, -1 = pad
    seg_tokens: torch.Tensor  # (S, Lt, Dt) subtitle token embeddings of each segment (Lt may be 0)
    seg_token_mask: torch.Tensor  # (S, Lt) bool

    def to(self, device: torch.device) -> VideoBatch:
        return VideoBatch(
            *(
                t.to(device)
                for t in (self.feats, self.mask, self.seg_clips, self.seg_tokens, self.seg_token_mask)
            )
        )


def transformer(cfg: C2FConfig, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        cfg.hidden, cfg.heads, cfg.ffn, cfg.dropout, activation="gelu", batch_first=True, norm_first=False
    )
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class AttentionPool(nn.Module):
    """Linear(d -> 1), masked softmax over tokens, weighted sum."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.score = nn.Linear(d, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # (B, L, d), (B, L) -> (B, d)
        logits = self.score(x).squeeze(-1).masked_fill(~mask, NEG)
        return torch.einsum("bl,bld->bd", logits.softmax(-1), x)


class QueryEncoder(nn.Module):
    """HERO's query encoder: Linear -> LayerNorm -> ReLU, + position, LayerNorm, one self-attention
    block, attention pooling. (B, L, d) token vectors, (B, L) mask -> one sentence vector (B, d).
    The HERO encoder runs one over f_cross(0, W^emb) for q (Eq. 3-4); the Fusion localizer has its
    own over W^emb for q_c (paper 2.2, "another query encoder")."""

    def __init__(self, cfg: C2FConfig) -> None:
        super().__init__()
        d = cfg.hidden
        self.proj = nn.Sequential(nn.Linear(d, d), nn.LayerNorm(d), nn.ReLU())
        self.pos = nn.Embedding(cfg.max_tokens + 2, d)
        self.norm = nn.LayerNorm(d)
        self.block = transformer(cfg, 1)
        self.pool = AttentionPool(d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # (B, L, d), (B, L) -> (B, d)
        positions = torch.arange(x.shape[1], device=x.device).clamp(max=self.pos.num_embeddings - 1)
        x = self.proj(x) + self.pos(positions)
        x = self.block(self.norm(x), src_key_padding_mask=~mask)
        return self.pool(x, mask)


class HeroEncoder(nn.Module):
    def __init__(self, cfg: C2FConfig) -> None:
        super().__init__()
        d = cfg.hidden
        self.cfg = cfg
        # frame embedding: LayerNorm(raw) -> Linear -> + position + type -> LayerNorm -> dropout
        self.frame_in = nn.Sequential(nn.LayerNorm(cfg.video_dim), nn.Linear(cfg.video_dim, d))
        self.token_in = nn.Sequential(nn.LayerNorm(cfg.token_dim), nn.Linear(cfg.token_dim, d))
        self.clip_pos = nn.Embedding(cfg.max_clips, d)
        self.token_pos = nn.Embedding(cfg.max_tokens + 2, d)
        self.type_emb = nn.Embedding(2, d)  # 0 = clip, 1 = text
        self.sep = nn.Parameter(torch.zeros(d))
        # pre-training (MFM / MLM): what a masked clip or token is replaced with
        self.frame_mask_emb = nn.Parameter(torch.zeros(d))
        self.token_mask_emb = nn.Parameter(torch.zeros(d))
        self.emb_norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)
        self.cross = transformer(cfg, cfg.cross_layers)
        # residual branch of the raw features and the temporal transformer
        self.residual = nn.Sequential(
            nn.LayerNorm(cfg.video_dim), nn.Dropout(cfg.dropout), nn.Linear(cfg.video_dim, d), nn.ReLU()
        )
        self.temp_pos = nn.Embedding(cfg.max_clips, d)
        self.temp_norm = nn.LayerNorm(d)
        self.temporal = transformer(cfg, cfg.temporal_layers)
        self.query_encoder = QueryEncoder(cfg)  # on top of f_cross(0, W^emb)

    def _positions(self, n: int, table: nn.Embedding, device: torch.device) -> torch.Tensor:
        return table(torch.arange(n, device=device).clamp(max=table.num_embeddings - 1))

    def embed_tokens(self, tokens: torch.Tensor, token_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(S, L, Dt) -> (S, L, d); `token_mask` (S, L) positions get the mask embedding (MLM)."""
        t = self.token_in(tokens)
        if token_mask is not None:
            t = torch.where(token_mask[..., None], self.token_mask_emb.to(t.dtype), t)
        x = t + self._positions(tokens.shape[1], self.token_pos, tokens.device) + self.type_emb.weight[1]
        return self.drop(self.emb_norm(x))

    def encode_videos(
        self,
        vb: VideoBatch,
        frame_mask: torch.Tensor | None = None,
        token_mask: torch.Tensor | None = None,
        order: torch.Tensor | None = None,
        return_tokens: bool = False,
    ):
        """-> V_temp (B, N, d). Pre-training hooks: `frame_mask` (B, N) clips replaced by the mask
        embedding and zeroed in the residual branch (MFM); `token_mask` (S, Lt) subtitle tokens
        replaced by the mask embedding (MLM); `order` (B, N) permutation of the clip contents before
        the temporal transformer, positions added after it (FOM). With `return_tokens`, also the
        f_cross outputs of the subtitle tokens (S, Lt, d)."""
        b, n, _ = vb.feats.shape
        dev = vb.feats.device
        # (N, d) timeline positions; HERO numbers a segment's clips 0.. inside f_cross (see README)
        pos = self._positions(n, self.clip_pos, dev)
        raw = vb.feats if frame_mask is None else vb.feats.masked_fill(frame_mask[..., None], 0.0)
        frames = self.frame_in(raw)
        if frame_mask is not None:
            frames = torch.where(frame_mask[..., None], self.frame_mask_emb.to(frames.dtype), frames)
        frames = frames + pos + self.type_emb.weight[0]  # (B, N, d)
        frames = self.drop(self.emb_norm(frames)).reshape(b * n, -1)  # (B*N, d)
        # one f_cross pass per segment: [its clips ; SEP ; its tokens]
        s, lc = vb.seg_clips.shape
        clip_valid = vb.seg_clips >= 0  # (S, Lc)
        seg_frames = frames[vb.seg_clips.clamp(min=0)] * clip_valid[..., None]  # (S, Lc, d)
        sep = self.sep.expand(s, 1, -1)
        toks = (
            self.embed_tokens(vb.seg_tokens, token_mask)
            if vb.seg_tokens.shape[1]
            else vb.seg_tokens.new_zeros(s, 0, frames.shape[1])
        )
        seq = torch.cat([seg_frames, sep, toks], dim=1)  # (S, Lc + 1 + Lt, d)
        valid = torch.cat([clip_valid, clip_valid.new_ones(s, 1), vb.seg_token_mask], dim=1)
        cross_out = self.cross(seq, src_key_padding_mask=~valid)  # (S, Lc + 1 + Lt, d)
        out = cross_out[:, :lc]  # (S, Lc, d)
        v_cross = frames.new_zeros(b * n, frames.shape[1])
        v_cross[vb.seg_clips[clip_valid]] = out[clip_valid]  # back on the timeline
        v_cross = v_cross.view(b, n, -1)
        content = self.residual(raw) + v_cross  # (B, N, d)
        if order is not None:
            content = content.gather(1, order[..., None].expand_as(content))
        x = content + self._positions(n, self.temp_pos, dev)
        v_temp = self.temporal(self.temp_norm(x), src_key_padding_mask=~vb.mask)
        if return_tokens:
            return v_temp, cross_out[:, lc + 1 :]
        return v_temp

    def encode_queries(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, L, Dt), mask (B, L) -> q (B, d) and W^emb_{s_q} (B, L, d), the query's token
        embeddings from the text embedder, before f_cross: Eq. 5 attends over them and the Fusion
        localizer's own query encoder reads them for q_c (paper 2.2)."""
        w_emb = self.embed_tokens(tokens)  # (B, L, d)
        w_cross = self.cross(w_emb, src_key_padding_mask=~mask)  # f_cross(0, W^emb)
        return self.query_encoder(w_cross, mask), w_emb


def video_scores(q: torch.Tensor, v_temp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 3 for every (query, video) pair: max over valid clips of cos(V_temp_t, q).
    q (Q, d), v_temp (V, N, d), mask (V, N) -> (Q, V)."""
    qn, vn = F.normalize(q, dim=-1), F.normalize(v_temp, dim=-1)
    cos = torch.einsum("qd,vnd->qvn", qn, vn).masked_fill(~mask[None], -2.0)
    return cos.max(dim=-1).values

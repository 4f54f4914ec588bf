"""The model's side of corpus inference: a corpus of encoded videos, padded query tokens, every
video's V_temp, and start/end probabilities of (video, query) pairs. The two-stage TVR prediction
built on them is c2f.eval.predict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from c2f.model.c2f import C2FModel, VideoInput, build_video_batch


@dataclass
class Corpus:
    names: list[str]
    videos: list[VideoInput]
    durations: list[float]
    clip_seconds: float = 1.5

    def clip_times(self, i: int) -> np.ndarray:
        n = len(self.videos[i].feats)
        st = np.arange(n) * self.clip_seconds
        return np.stack([st, np.minimum(st + self.clip_seconds, self.durations[i])], 1)


def pad_tokens(tokens: Sequence[np.ndarray], max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """list of (L_i, Dt) -> (B, L, Dt), mask (B, L)."""
    n = max(len(t) for t in tokens)
    n = min(n, max_len) if max_len else n
    out = torch.zeros(len(tokens), n, tokens[0].shape[1])
    mask = torch.zeros(len(tokens), n, dtype=torch.bool)
    for i, t in enumerate(tokens):
        m = min(len(t), n)
        out[i, :m] = torch.as_tensor(t[:m], dtype=torch.float32)
        mask[i, :m] = True
    return out, mask


@torch.inference_mode()
def encode_corpus(model: C2FModel, corpus: Corpus, batch: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """V_temp of every video, padded: (V, N_max, d), mask (V, N_max)."""
    cfg = model.cfg
    outs = []
    for s in range(0, len(corpus.videos), batch):
        vb = build_video_batch(corpus.videos[s : s + batch], cfg.token_dim, cfg.max_clips).to(model.device)
        v, m = model.encode_videos(vb)
        outs.append((v, m))
    n = max(v.shape[1] for v, _ in outs)
    v_all = torch.cat([torch.nn.functional.pad(v, (0, 0, 0, n - v.shape[1])) for v, _ in outs])
    m_all = torch.cat([torch.nn.functional.pad(m, (0, n - m.shape[1])) for _, m in outs])
    return v_all, m_all


@torch.inference_mode()
def localize_pairs(
    model: C2FModel, v_temp, v_mask, q, q_tok, q_mask
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Start/end probabilities (softmax over valid clips) and importance for paired rows."""
    out = model.localize(v_temp, v_mask, q, q_tok, q_mask)
    st = out.start_logits.float().softmax(-1).cpu().numpy()
    ed = out.end_logits.float().softmax(-1).cpu().numpy()
    imp = out.importance.float().cpu().numpy() if out.importance is not None else None
    return st, ed, imp

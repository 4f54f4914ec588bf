"""The model's side of corpus inference: a corpus of videos and padded query tokens. The two-stage
TVR prediction (windows of long videos, Eq. 3, localizer, moments) is c2f.eval.predict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from c2f.model.c2f import VideoInput


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

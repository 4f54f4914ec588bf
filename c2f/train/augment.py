"""Paper 2.4 augmentation (after ConSERT): on video, subtitle and query embeddings, each with
probability p (0.5), one of: token shuffling 40 %, token cutoff 15 %, feature cutoff 15 %,
dropout 15 %, unchanged 15 %. Shuffling clips would move the ground-truth span, so on video
features a drawn shuffle leaves them unchanged (documented choice)."""

from __future__ import annotations

import torch

OPS = ("shuffle", "token_cutoff", "feature_cutoff", "dropout", "none")
SPLIT = torch.tensor([0.40, 0.15, 0.15, 0.15, 0.15])


def draw_ops(n: int, p: float, generator: torch.Generator | None = None) -> list[str]:
    applied = torch.rand(n, generator=generator) < p
    kinds = torch.multinomial(SPLIT, n, replacement=True, generator=generator)
    return [OPS[int(k)] if a else "none" for a, k in zip(applied, kinds, strict=True)]


def augment(
    x: torch.Tensor,
    mask: torch.Tensor,
    p: float = 0.5,
    allow_shuffle: bool = True,
    rate: float = 0.15,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """x (B, L, D), mask (B, L): a new tensor, each row augmented independently."""
    out = x.clone()
    for b, op in enumerate(draw_ops(len(x), p, generator)):
        valid = torch.nonzero(mask[b]).squeeze(1)
        if len(valid) == 0:
            continue
        if op == "shuffle" and allow_shuffle:
            out[b, valid] = x[b, valid[torch.randperm(len(valid), generator=generator)]]
        elif op == "token_cutoff":
            drop = valid[torch.rand(len(valid), generator=generator) < rate]
            out[b, drop] = 0
        elif op == "feature_cutoff":
            keep = (torch.rand(x.shape[-1], generator=generator) >= rate).to(x.dtype)
            out[b, valid] = x[b, valid] * keep
        elif op == "dropout":
            keep = (torch.rand(len(valid), x.shape[-1], generator=generator) >= rate).to(x.dtype)
            out[b, valid] = x[b, valid] * keep
    return out

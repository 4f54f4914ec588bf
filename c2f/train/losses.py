"""Training losses: HERO's ranking hinge in both directions, the localizer loss of Eq. 10."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ranking_loss(
    scores: torch.Tensor, positive: torch.Tensor, margin: float = 0.1, hard_k: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """HERO's ranking hinge in both directions, for any number of positives per row and column.

    scores (Q, V): Eq. 3 for every in-batch (query, video) pair; positive (Q, V) bool: True where
    the video is the query's own (several queries of a batch may share a video; a video may have
    no query, a query may have no video in the batch).

    - video negatives: each (query, positive video) pair against each of that query's other videos;
    - query negatives: each (video, positive query) pair against each of the video's negative
      queries, i.e. queries whose own video is another one of the batch.

    Each loss is the mean of max(0, margin + s_neg - s_pos) over its (positive pair, negative)
    triples; rows or columns without a positive contribute nothing. With hard_k, each anchor's
    hardest hard_k negatives weigh 10 and the others 0.1 (HERO, after warm-up).
    """
    has_video = positive.any(dim=1, keepdim=True)  # (Q, 1) the query's own video is in the batch
    video_neg = ~positive  # (Q, V)
    query_neg = ~positive & has_video  # (Q, V) queries of another video
    loss_videos = _hinge(scores, positive, video_neg, margin, hard_k)
    loss_queries = _hinge(scores.t(), positive.t(), query_neg.t(), margin, hard_k)
    return loss_videos, loss_queries


def _hinge(
    s: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, margin: float, hard_k: int | None
) -> torch.Tensor:
    """s, pos, neg (A, C): anchors a against candidates c. Weighted mean of
    max(0, margin + s[a, n] - s[a, p]) over every positive p and negative n of each anchor."""
    if hard_k is None:
        w = neg.to(s.dtype)  # (A, C) weight of each negative
    else:
        k = min(hard_k, s.shape[1])
        rank = s.masked_fill(~neg, float("-inf")).argsort(dim=1, descending=True).argsort(dim=1)
        w = torch.full_like(s, 0.1).masked_fill(rank < k, 10.0) * neg  # in s's dtype: 0.1 exactly
    h = (margin + s[:, None, :] - s[:, :, None]).clamp(min=0)  # (A, P, N) = margin + s[a, n] - s[a, p]
    pair = pos[:, :, None].to(s.dtype) * w[:, None, :]  # (A, P, N) weight of each triple
    return (h * pair).sum() / pair.sum().clamp(min=1)


def highlight_target(start: torch.Tensor, end: torch.Tensor, n: int, widen: float = 0.1) -> torch.Tensor:
    """(B,) inclusive clip spans -> (B, n) 1 inside the span widened by 10 % of its length each side."""
    length = (end - start + 1).float()
    extra = torch.floor(length * widen)
    lo = (start.float() - extra).clamp(min=0)
    hi = end.float() + extra
    t = torch.arange(n, device=start.device)[None].float()
    return ((t >= lo[:, None]) & (t <= hi[:, None])).float()


def localizer_loss(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    importance: torch.Tensor | None,
    mask: torch.Tensor,
    start: torch.Tensor,
    end: torch.Tensor,
    highlight: str,
    highlight_weight: float = 1.0,
) -> torch.Tensor:
    """Eq. 10: 0.5 * (CE(start) + CE(end)) + highlight_weight * L_h(S_h, Y_h), over valid clips.

    L_h is "l1" (the paper: the mean of |S_h - Y_h|), "l1-balanced" (the same L1 with the batch's
    inside-span clips and its outside clips weighing half each: a gate that cannot yet tell them
    apart costs the same open or shut, where plain L1 pulls it shut because most clips are outside)
    or "bce" (VSLNet's binary cross-entropy, inside-span clips x2, the mean).
    """
    loss = 0.5 * (F.cross_entropy(start_logits, start) + F.cross_entropy(end_logits, end))
    if importance is not None:
        y = highlight_target(start, end, importance.shape[1])  # (B, N)
        if highlight == "l1":
            per_clip = (importance - y).abs() / mask.sum().clamp(min=1)
        elif highlight == "l1-balanced":
            inside, outside = (y * mask).sum().clamp(min=1), ((1 - y) * mask).sum().clamp(min=1)
            per_clip = (importance - y).abs() * 0.5 * (y / inside + (1 - y) / outside)
        elif highlight == "bce":
            p = importance.clamp(1e-12, 1 - 1e-7)  # S_h is already a sigmoid; clamp keeps log finite
            per_clip = -(y * p.log() + (1 - y) * (1 - p).log()) * (1 + y) / mask.sum().clamp(min=1)
        else:
            raise ValueError(f"highlight loss must be 'l1', 'l1-balanced' or 'bce', not {highlight!r}")
        loss = loss + highlight_weight * (per_clip * mask).sum()
    return loss

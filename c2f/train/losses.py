"""Training losses: HERO's ranking hinge in both directions, the localizer loss of Eq. 10."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ranking_loss(
    scores: torch.Tensor, positive: torch.Tensor, margin: float = 0.1, hard_k: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """scores (Q, V) Eq. 3 for every in-batch pair; positive (Q, V) bool (a query's own video).
    Returns (video-negatives loss, query-negatives loss): mean of max(0, margin + s_neg - s_pos).
    With hard_k, the hardest hard_k negatives weigh 10, the others 0.1 (HERO, after warm-up)."""
    pos_q = (scores * positive).sum(1, keepdim=True)  # (Q, 1) each query's positive score
    neg = ~positive

    def hinge(s_pos: torch.Tensor, s: torch.Tensor, neg_mask: torch.Tensor) -> torch.Tensor:
        h = (margin + s - s_pos).clamp(min=0) * neg_mask
        if hard_k is None:
            return h.sum() / neg_mask.sum().clamp(min=1)
        k = min(hard_k, s.shape[1])
        rank = (s.masked_fill(~neg_mask, -1e4)).argsort(dim=1, descending=True).argsort(dim=1)
        w = torch.where(rank < k, 10.0, 0.1) * neg_mask
        return (h * w).sum() / w.sum().clamp(min=1)

    loss_ctx = hinge(pos_q, scores, neg)  # other videos for each query
    pos_v = (scores * positive).sum(0, keepdim=True)  # (1, V)
    loss_q = hinge(pos_v.t(), scores.t(), neg.t())  # other queries for each video
    return loss_ctx, loss_q


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
) -> torch.Tensor:
    """Eq. 10: 0.5 * (CE(start) + CE(end)) + L1(S_h, Y_h) over valid clips."""
    loss = 0.5 * (F.cross_entropy(start_logits, start) + F.cross_entropy(end_logits, end))
    if importance is not None:
        y = highlight_target(start, end, importance.shape[1])
        loss = loss + ((importance - y).abs() * mask).sum() / mask.sum().clamp(min=1)
    return loss

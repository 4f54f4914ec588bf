"""Pre-training with HERO's four tasks (paper 2.3) on videos with subtitles, no annotations needed.

- MLM: one token of each subtitle segment is replaced by a mask embedding; its f_cross output
  (which sees the segment's clips) must recover the token's feature. The text encoder is frozen
  and gives continuous features, not ids, so the prediction is scored with NCE against the
  distinct masked tokens of the batch (the "vocabulary" at hand) instead of a softmax over ids.
  CLIP's text tower is causal: the features of every token after the masked one were computed
  with it in view and carry the answer. So the model sees the segment's tokens only up to the
  masked one (left context + clips); HERO masks 15 % of the tokens and sees both sides, which is
  sound only for non-contextual word embeddings like its own.
- MFM: 15 % of clips are zeroed and replaced by a mask embedding; V_temp at those positions must
  pick out the true features among all masked clips of the batch (NCE).
- FOM: 15 % of clip positions are shuffled before the temporal transformer; a classifier over
  positions recovers each shuffled clip's original index.
- VSM: a subtitle sentence is the query; the local head (localizer loss on its clips) and the
  global head (ranking loss against the other videos of the batch) are trained as in fine-tuning.
Tasks are sampled per step with ratio MLM:MFM:FOM:VSM = 2:2:1:2 by default.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from c2f.device import pick_device
from c2f.model.c2f import C2FModel, VideoInput, build_video_batch
from c2f.model.checkpoint import save_checkpoint
from c2f.model.config import C2FConfig
from c2f.model.encoder import VideoBatch
from c2f.model.inference import pad_tokens
from c2f.train.losses import localizer_loss, ranking_loss

TASKS = ("mlm", "mfm", "fom", "vsm")
DEFAULT_RATIO = {"mlm": 2, "mfm": 2, "fom": 1, "vsm": 2}
MASK_PROB = 0.15
TAU = 0.1


class PretrainHeads(nn.Module):
    def __init__(self, cfg: C2FConfig) -> None:
        super().__init__()
        self.mlm = nn.Linear(cfg.hidden, cfg.token_dim)
        self.mfm = nn.Linear(cfg.hidden, cfg.video_dim)
        self.fom = nn.Linear(cfg.hidden, cfg.max_clips)


def nce(pred: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """pred (M, D) must point at its own row of targets (M, D); identical target rows are one class."""
    uniq, label = torch.unique(targets, dim=0, return_inverse=True)
    logits = F.normalize(pred, dim=-1) @ F.normalize(uniq, dim=-1).t() / TAU  # (M, U)
    return F.cross_entropy(logits, label)


def choose(mask: torch.Tensor, prob: float, gen: torch.Generator) -> torch.Tensor:
    """A random subset (about `prob`, at least one per row when possible) of the True entries."""
    pick = (torch.rand(mask.shape, generator=gen) < prob) & mask.cpu()
    for r in range(mask.shape[0]):
        if not pick[r].any() and mask[r].any():
            pick[r, torch.nonzero(mask[r].cpu())[torch.randint(int(mask[r].sum()), (1,), generator=gen)]] = (
                True
            )
    return pick.to(mask.device)


def mlm_positions(token_mask: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(S, Lt) bool: one token per segment with text, uniform over its tokens after the first (a
    causal encoder's start-token feature is the same in every sentence)."""
    picks = torch.zeros(token_mask.shape, dtype=torch.bool)
    for r, n in enumerate(token_mask.sum(1).tolist()):
        if n >= 2:  # real tokens are a prefix of the row (build_video_batch)
            picks[r, 1 + int(torch.randint(n - 1, (1,), generator=gen))] = True
    return picks.to(token_mask.device)


def mlm_predictions(
    model: C2FModel, heads: PretrainHeads, vb: VideoBatch, masked: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(prediction (M, Dt), target (M, Dt)) for the first masked token of each segment. The model
    sees the segment's clips and its tokens before that one, nothing after it: with causal token
    features (CLIP), every later token's feature depends on the masked one."""
    before = (masked.long().cumsum(1) - masked.long()) == 0  # (S, Lt): no masked token earlier
    visible = vb.seg_token_mask & before
    scored = masked & visible  # (S, Lt)
    _, tok_out = model.encoder.encode_videos(
        replace(vb, seg_token_mask=visible), token_mask=scored, return_tokens=True
    )
    return heads.mlm(tok_out[scored]), vb.seg_tokens[scored]


def mlm_loss(
    model: C2FModel,
    heads: PretrainHeads,
    vb: VideoBatch,
    gen: torch.Generator,
    masked: torch.Tensor | None = None,
) -> torch.Tensor | None:
    masked = mlm_positions(vb.seg_token_mask, gen) if masked is None else masked  # (S, Lt)
    if not masked.any():
        return None
    return nce(*mlm_predictions(model, heads, vb, masked))


def mfm_loss(
    model: C2FModel,
    heads: PretrainHeads,
    vb: VideoBatch,
    gen: torch.Generator,
    masked: torch.Tensor | None = None,
) -> torch.Tensor:
    masked = choose(vb.mask, MASK_PROB, gen) if masked is None else masked  # (B, N)
    v_temp = model.encoder.encode_videos(vb, frame_mask=masked)
    return nce(heads.mfm(v_temp[masked]), vb.feats[masked])


def fom_order(mask: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N) permutation that shuffles ~15 % of each video's valid positions among themselves,
    and the (B, N) bool of the positions whose content moved there from elsewhere."""
    b, n = mask.shape
    order = torch.arange(n).repeat(b, 1)
    for r in range(b):
        valid = torch.nonzero(mask[r].cpu()).squeeze(1)
        k = max(2, round(MASK_PROB * len(valid))) if len(valid) >= 2 else 0
        if k == 0:
            continue
        sel = valid[torch.randperm(len(valid), generator=gen)[:k]]
        order[r, sel] = sel[torch.randperm(k, generator=gen)]
    return order.to(mask.device), (order != torch.arange(n)).to(mask.device)


def fom_loss(
    model: C2FModel, heads: PretrainHeads, vb: VideoBatch, gen: torch.Generator
) -> torch.Tensor | None:
    order, moved = fom_order(vb.mask, gen)
    if not moved.any():
        return None
    v_temp = model.encoder.encode_videos(vb, order=order)
    # the content now at position t came from position order[t]: classify that original index
    return F.cross_entropy(heads.fom(v_temp[moved]), order[moved])


def vsm_loss(
    model: C2FModel, cfg: C2FConfig, videos: list[VideoInput], vb: VideoBatch, gen: torch.Generator
) -> torch.Tensor | None:
    """One subtitle per video as a query: ranking over the batch's videos + localizer on its clips."""
    picks = []
    for b, v in enumerate(videos):
        subs = [(c, t) for c, t in v.segments if t is not None and len(t)]
        if subs:
            c, t = subs[int(torch.randint(len(subs), (1,), generator=gen))]
            picks.append((b, int(c.min()), int(c.max()), t))
    if len(picks) < 2:
        return None
    dev = vb.feats.device
    v_temp = model.encoder.encode_videos(vb)
    tok, tmask = pad_tokens([t for *_, t in picks], cfg.max_tokens + 2)
    q, states = model.encode_queries(tok.to(dev), tmask.to(dev))
    rows = torch.tensor([b for b, *_ in picks], device=dev)
    scores = model.video_scores(q, v_temp, vb.mask)  # (P, B)
    positive = torch.zeros_like(scores, dtype=torch.bool)
    positive[torch.arange(len(picks), device=dev), rows] = True
    l_ctx, l_q = ranking_loss(scores.float(), positive, cfg.margin)
    loc = model.localize(v_temp[rows], vb.mask[rows], q, states, tmask.to(dev))
    st = torch.tensor([s for _, s, _, _ in picks], device=dev)
    ed = torch.tensor([e for _, _, e, _ in picks], device=dev)
    imp = None if loc.importance is None else loc.importance.float()
    return (
        l_ctx
        + l_q
        + localizer_loss(
            loc.start_logits.float(),
            loc.end_logits.float(),
            imp,
            vb.mask[rows].float(),
            st,
            ed,
            cfg.highlight_loss,
        )
    )


def _window(values: list[float]) -> int:
    """Steps averaged at each end of a task's loss curve: up to 20, never overlapping (a rarely
    drawn task would otherwise report the same mean first and last)."""
    return max(1, min(20, len(values) // 2))


@dataclass
class PretrainSettings:
    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-4
    ratio: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_RATIO))
    seed: int = 0
    device: str | None = None


def pretrain_model(
    cfg: C2FConfig,
    videos: list[VideoInput],
    settings: PretrainSettings,
    out_dir: str | Path | None = None,
    data_note: str = "",
    feature_settings=None,
    text_encoder: dict[str, Any] | None = None,
    progress: bool = True,
) -> tuple[C2FModel, dict]:
    from tqdm import tqdm

    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    dev = pick_device(settings.device)
    model, heads = C2FModel(cfg).to(dev), PretrainHeads(cfg).to(dev)
    params = list(model.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=settings.lr, betas=(0.9, 0.98), weight_decay=0.01)
    tasks = [t for t in TASKS if settings.ratio.get(t, 0) > 0]
    weights = torch.tensor([float(settings.ratio[t]) for t in tasks])
    losses: dict[str, list[float]] = {t: [] for t in tasks}
    for _ in tqdm(range(settings.steps), desc="pretrain", disable=not progress):
        model.train()
        task = tasks[int(torch.multinomial(weights, 1, generator=gen))]
        idx = torch.randperm(len(videos), generator=gen)[: settings.batch_size].tolist()
        batch = [videos[i] for i in idx]
        vb = build_video_batch(batch, cfg.token_dim, cfg.max_clips).to(dev)
        if task == "mlm":
            loss = mlm_loss(model, heads, vb, gen)
        elif task == "mfm":
            loss = mfm_loss(model, heads, vb, gen)
        elif task == "fom":
            loss = fom_loss(model, heads, vb, gen)
        else:
            loss = vsm_loss(model, cfg, batch, vb, gen)
        if loss is None:
            continue
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses[task].append(float(loss.detach()))
    summary = {
        "tasks": {t: settings.ratio[t] for t in tasks},
        "steps": settings.steps,
        "videos": len(videos),
        "data": data_note,
        "first_loss": {t: round(float(np.mean(v[: _window(v)])), 4) for t, v in losses.items() if v},
        "last_loss": {t: round(float(np.mean(v[-_window(v) :])), 4) for t, v in losses.items() if v},
        "settings": asdict(settings),
    }
    if out_dir:
        save_checkpoint(out_dir, model, feature_settings, text_encoder or {}, {"pretrain": summary})
        (Path(out_dir) / "pretrain_summary.json").write_text(json.dumps(summary, indent=1))
    return model, summary

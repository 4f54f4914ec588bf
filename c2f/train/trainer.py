"""Training: HERO ranking loss (both directions, in-batch and hard negatives) + the localizer loss
(Eq. 10) on positive pairs, optional 2.4 augmentation, periodic exact validation, best checkpoint,
resumable (safetensors + JSON, no pickles), seeded; mixed precision on CUDA."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from c2f.data.tvr import TVRQuery, span_to_clips
from c2f.device import autocast_dtype, pick_device
from c2f.eval.metrics import compute_metrics
from c2f.features.settings import FeatureSettings
from c2f.model.c2f import C2FModel, build_video_batch
from c2f.model.checkpoint import save_checkpoint
from c2f.model.config import C2FConfig
from c2f.model.inference import Corpus, pad_tokens, predict_corpus
from c2f.train.augment import augment
from c2f.train.losses import localizer_loss, ranking_loss

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-4
    warmup: int = 100  # linear warm-up steps, then linear decay
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    hard_negative_after: int | None = None  # step from which hard negatives are weighted (HERO)
    eval_every: int = 200
    seed: int = 0
    device: str | None = None


@dataclass
class TrainResult:
    model: C2FModel
    best_metrics: dict[str, Any] | None
    history: list[dict[str, Any]] = field(default_factory=list)


def score_of(metrics: dict) -> float:
    """Model selection: VCMR R@1 + R@5 at IoU 0.7, then SVMR R@1."""
    v = metrics["VCMR"]
    return v["0.7-r1"] + v["0.7-r5"] + 0.01 * metrics["SVMR"]["0.7-r1"]


def _state_tensors(
    model: C2FModel, opt: torch.optim.Optimizer, gen: torch.Generator
) -> dict[str, torch.Tensor]:
    out = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for i, p in enumerate(model.parameters()):
        st = opt.state.get(p, {})
        for k in ("exp_avg", "exp_avg_sq", "step"):
            if k in st:
                out[f"opt.{i}.{k}"] = torch.as_tensor(st[k]).detach().cpu().contiguous()
    out["rng"] = gen.get_state()
    return out


def load_pretrained(model: C2FModel, checkpoint: str | Path) -> dict[str, Any]:
    """Start from a pre-trained checkpoint: every tensor whose name and shape match is copied (a
    different localizer keeps its fresh weights). Returns what the new checkpoint records."""
    from c2f.model.checkpoint import load_checkpoint

    pre, meta = load_checkpoint(checkpoint, "cpu")
    own = model.state_dict()
    copied = {k: v for k, v in pre.state_dict().items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(copied, strict=False)
    return {
        "checkpoint": str(checkpoint),
        "tensors_copied": len(copied),
        "tensors_total": len(own),
        "pretrain": meta.get("extra", {}).get("pretrain"),
    }


def train_model(
    cfg: C2FConfig,
    corpus: Corpus,
    train_queries: list[TVRQuery],
    train_tokens: list[np.ndarray],
    val_queries: list[TVRQuery],
    val_tokens: list[np.ndarray],
    settings: TrainSettings,
    out_dir: str | Path | None = None,
    feature_settings: FeatureSettings | None = None,
    text_encoder: dict[str, Any] | None = None,
    resume: bool = False,
    progress: bool = True,
    init_checkpoint: str | Path | None = None,
) -> TrainResult:
    from safetensors.torch import load_file, save_file
    from tqdm import tqdm

    torch.manual_seed(settings.seed)
    dev = pick_device(settings.device)
    model = C2FModel(cfg).to(dev)
    init_info = None
    if init_checkpoint is not None:
        init_info = load_pretrained(model, init_checkpoint)
    opt = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, betas=(0.9, 0.98), weight_decay=settings.weight_decay
    )

    def lr_factor(step: int) -> float:  # linear warm-up, then linear decay to 5 %
        return min(1.0, (step + 1) / max(1, settings.warmup)) * max(0.05, 1 - step / max(1, settings.steps))

    gen = torch.Generator().manual_seed(settings.seed)
    amp = autocast_dtype(dev)
    name_to_idx = {n: i for i, n in enumerate(corpus.names)}
    out = Path(out_dir) if out_dir else None
    start_step, best, history = 0, None, []
    if resume and out and (out / "resume.safetensors").is_file():
        state = load_file(str(out / "resume.safetensors"))
        model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
        for i, p in enumerate(model.parameters()):
            if f"opt.{i}.exp_avg" in state:
                opt.state[p] = {
                    k: state[f"opt.{i}.{k}"].to(dev) if k != "step" else state[f"opt.{i}.{k}"]
                    for k in ("exp_avg", "exp_avg_sq", "step")
                }
        gen.set_state(state["rng"])
        info = json.loads((out / "resume.json").read_text())
        start_step, best, history = info["step"], info["best"], info["history"]
        log.info("resumed at step %d", start_step)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s + start_step))
    order = torch.randperm(len(train_queries), generator=gen)
    pos = 0
    bar = tqdm(
        range(start_step, settings.steps),
        desc="train",
        disable=not progress,
        initial=start_step,
        total=settings.steps,
    )
    for step in bar:
        model.train()
        if pos + settings.batch_size > len(order):
            order, pos = torch.randperm(len(train_queries), generator=gen), 0
        batch = order[pos : pos + settings.batch_size].tolist()
        pos += settings.batch_size
        qs = [train_queries[i] for i in batch]
        vids = sorted({name_to_idx[q.vid_name] for q in qs})
        col = {v: j for j, v in enumerate(vids)}
        vb = build_video_batch([corpus.videos[v] for v in vids], cfg.token_dim, cfg.max_clips)
        tok, tmask = pad_tokens([train_tokens[i] for i in batch], cfg.max_tokens + 2)
        if cfg.augment:
            vb.feats = augment(vb.feats, vb.mask, cfg.augment_prob, allow_shuffle=False, generator=gen)
            if vb.seg_tokens.shape[1]:
                vb.seg_tokens = augment(vb.seg_tokens, vb.seg_token_mask, cfg.augment_prob, generator=gen)
            tok = augment(tok, tmask, cfg.augment_prob, generator=gen)
        vb, tok, tmask = vb.to(dev), tok.to(dev), tmask.to(dev)
        positive = torch.zeros(len(qs), len(vids), dtype=torch.bool, device=dev)
        rows = torch.arange(len(qs), device=dev)
        cols = torch.tensor([col[name_to_idx[q.vid_name]] for q in qs], device=dev)
        positive[rows, cols] = True
        n = vb.feats.shape[1]
        spans = [
            span_to_clips(
                q.ts[0], q.ts[1], corpus.clip_seconds, len(corpus.videos[name_to_idx[q.vid_name]].feats)
            )
            for q in qs
        ]
        st_lbl = torch.tensor([min(s, n - 1) for s, _ in spans], device=dev)
        ed_lbl = torch.tensor([min(e, n - 1) for _, e in spans], device=dev)
        with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
            v_temp, v_mask = model.encode_videos(vb)
            q, q_states = model.encode_queries(tok, tmask)
            scores = model.video_scores(q, v_temp, v_mask)  # (Q, V)
            hard = settings.hard_negative_after is not None and step >= settings.hard_negative_after
            l_ctx, l_q = ranking_loss(
                scores.float(), positive, cfg.margin, cfg.hard_negatives if hard else None
            )
            loc = model.localize(v_temp[cols], v_mask[cols], q, q_states, tmask)
            l_loc = localizer_loss(
                loc.start_logits.float(),
                loc.end_logits.float(),
                None if loc.importance is None else loc.importance.float(),
                v_mask[cols].float(),
                st_lbl,
                ed_lbl,
            )
            loss = cfg.retrieval_weight * (l_ctx + l_q) + cfg.localizer_weight * l_loc
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        opt.step()
        sched.step()
        if not math.isfinite(loss.item()):
            raise RuntimeError(f"training diverged at step {step} (loss {loss.item()})")
        bar.set_postfix(
            loss=f"{loss.item():.3f}", ret=f"{(l_ctx + l_q).item():.3f}", loc=f"{l_loc.item():.3f}"
        )
        last = step + 1 == settings.steps
        if (step + 1) % settings.eval_every == 0 or last:
            entry: dict[str, Any] = {"step": step + 1, "loss": round(loss.item(), 4)}
            if val_queries:
                metrics = compute_metrics(predict_corpus(model, val_queries, val_tokens, corpus), val_queries)
                entry["metrics"] = {t: metrics[t] for t in ("VCMR", "SVMR", "VR")}
                if best is None or score_of(metrics) > score_of(best):
                    best = entry["metrics"]
                    if out:
                        save_checkpoint(
                            out / "best",
                            model,
                            feature_settings,
                            text_encoder or {},
                            {
                                "step": step + 1,
                                "val_metrics": best,
                                "train": asdict(settings),
                                "init": init_info,
                            },
                        )
            history.append(entry)
            if out:
                out.mkdir(parents=True, exist_ok=True)
                save_file(_state_tensors(model, opt, gen), str(out / "resume.safetensors"))
                (out / "resume.json").write_text(
                    json.dumps({"step": step + 1, "best": best, "history": history})
                )
    if out:
        save_checkpoint(
            out / "last",
            model,
            feature_settings,
            text_encoder or {},
            {"step": settings.steps, "val_metrics": best, "train": asdict(settings), "init": init_info},
        )
    return TrainResult(model, best, history)

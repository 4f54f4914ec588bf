"""Training: HERO ranking loss (both directions, in-batch and hard negatives) + the localizer loss
(Eq. 10) on positive pairs, optional 2.4 augmentation, periodic exact validation, best checkpoint,
resumable (safetensors + JSON, no pickles), seeded; bf16 autocast on CUDA, gradient accumulation.

Long videos: a video longer than `max_clips` is seen through one window of max_clips clips per
batch, holding its queries' moments (`c2f.data.windows.choose_window`); labels are relative to the
window and never clamped. A query whose span does not lie wholly in the window (longer than
max_clips, or beside another query's moment in the same batch) keeps its ranking loss but gets no
localizer loss; such rows are counted and reported (`data` in the history and the checkpoint)."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from c2f.data.tvr import TVRQuery
from c2f.data.windows import choose_window, window_video
from c2f.device import autocast_dtype, pick_device
from c2f.eval.metrics import compute_metrics
from c2f.eval.predict import predict_corpus
from c2f.features.settings import FeatureSettings
from c2f.model.c2f import C2FModel, build_video_batch
from c2f.model.checkpoint import save_checkpoint
from c2f.model.config import C2FConfig
from c2f.model.inference import Corpus, pad_tokens
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
    grad_accum: int = 1  # micro-batches of batch_size queries per optimizer step
    eval_every: int = 200
    # Videos localized per validation query. Model selection reads VCMR R@1/R@5 and SVMR R@1, which
    # the best-ranked videos decide; the localizer runs on every one of them, so 100 (what
    # `c2f evaluate` does, the official protocol) makes validation ~10x slower for the same choice.
    val_top_k: int = 10
    seed: int = 0
    device: str | None = None
    # Steps over which Eq. 10's importance loss weight ramps from 0 to 1 (0: none): a measured
    # alternative remedy for the shut gate (BENCHMARKS.md), not the default
    highlight_warmup: int = 0


@dataclass
class TrainResult:
    model: C2FModel
    best_metrics: dict[str, Any] | None
    history: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # long videos / spans: what was windowed or skipped


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
    out["torch_rng"] = torch.get_rng_state()  # dropout draws from the global generator
    if model.device.type == "cuda":
        out["cuda_rng"] = torch.cuda.get_rng_state(model.device)
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


def clip_span(st: float, ed: float, clip_seconds: float) -> tuple[int, int]:
    """Seconds -> inclusive clip span on the unbounded grid: i = floor(st/cs),
    j = max(ceil(ed/cs) - 1, i) (same rule as `span_to_clips`, without its clamp)."""
    i = max(math.floor(st / clip_seconds + 1e-9), 0)
    return i, max(math.ceil(ed / clip_seconds - 1e-9) - 1, i)


def _num_clips(corpus: Corpus, i: int) -> int:
    """Clips of video i, without reading its vectors when the corpus is a pack."""
    pack = getattr(corpus.videos, "pack", None)
    return pack.num_clips(i) if pack is not None else len(corpus.videos[i].feats)


def query_spans(queries: Sequence[TVRQuery], corpus: Corpus) -> tuple[list[tuple[int, int]], dict[str, int]]:
    """Inclusive clip spans of the queries on their whole videos. A span ending past the video's
    last clip (ts beyond the features) ends at the last clip: the features stop there. Those are
    counted as `end_past_features`."""
    idx = {n: i for i, n in enumerate(corpus.names)}
    spans, past = [], 0
    for q in queries:
        n = _num_clips(corpus, idx[q.vid_name])
        i, j = clip_span(q.ts[0], q.ts[1], corpus.clip_seconds)
        if j > n - 1:
            past += 1
            i, j = min(i, n - 1), n - 1
        spans.append((i, j))
    return spans, {"end_past_features": past}


def data_report(queries: Sequence[TVRQuery], spans: list[tuple[int, int]], corpus: Corpus, max_clips: int) -> dict:
    """What long videos and long moments do to the training set (reported, never silent)."""
    idx = {n: i for i, n in enumerate(corpus.names)}
    long_video = sum(_num_clips(corpus, idx[q.vid_name]) > max_clips for q in queries)
    long_span = sum(j - i + 1 > max_clips for i, j in spans)
    return {
        "queries": len(queries),
        "max_clips": max_clips,
        "queries_on_videos_longer_than_max_clips": long_video,
        "spans_longer_than_max_clips_no_localizer_loss": long_span,
    }


def train_model(
    cfg: C2FConfig,
    corpus: Corpus,
    train_queries: list[TVRQuery],
    train_tokens: Sequence[np.ndarray],
    val_queries: list[TVRQuery],
    val_tokens: Sequence[np.ndarray],
    settings: TrainSettings,
    out_dir: str | Path | None = None,
    feature_settings: FeatureSettings | None = None,
    text_encoder: dict[str, Any] | None = None,
    resume: bool = False,
    progress: bool = True,
    init_checkpoint: str | Path | None = None,
    val_corpus: Corpus | None = None,
) -> TrainResult:
    """`val_corpus`: the videos validation searches (default: `corpus`); TVR's protocol searches
    only the split's own videos."""
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
    spans, past = query_spans(train_queries, corpus)
    data = {**data_report(train_queries, spans, corpus, cfg.max_clips), **past, "localizer_rows_skipped": 0}
    if data["queries_on_videos_longer_than_max_clips"] or data["end_past_features"]:
        log.warning("training data: %s", data)
    out = Path(out_dir) if out_dir else None
    start_step, best, history = 0, None, []
    order = torch.randperm(len(train_queries), generator=gen)
    pos = 0
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
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and dev.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], dev)
        info = json.loads((out / "resume.json").read_text())
        start_step, best, history = info["step"], info["best"], info["history"]
        if "order" in state and len(state["order"]) == len(train_queries):  # same data: same sample order
            order, pos = state["order"], info["pos"]
        data["localizer_rows_skipped"] = info.get("data", {}).get("localizer_rows_skipped", 0)
        log.info("resumed at step %d", start_step)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s + start_step))

    def next_batch() -> list[int]:
        nonlocal order, pos
        if pos + settings.batch_size > len(order):
            order, pos = torch.randperm(len(train_queries), generator=gen), 0
        batch = order[pos : pos + settings.batch_size].tolist()
        pos += settings.batch_size
        return batch

    def micro_loss(batch: list[int], hard: bool, highlight_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        qs = [train_queries[i] for i in batch]
        vids = sorted({name_to_idx[q.vid_name] for q in qs})
        col = {v: j for j, v in enumerate(vids)}
        cols_list = [col[name_to_idx[q.vid_name]] for q in qs]
        # one window per video holding its queries' moments; labels relative to it
        windows, st_rel, ed_rel, keep = [], [0] * len(qs), [0] * len(qs), [False] * len(qs)
        for v in vids:
            rows = [r for r, c in enumerate(cols_list) if c == col[v]]
            start, length, inside = choose_window(
                _num_clips(corpus, v), [spans[batch[r]] for r in rows], cfg.max_clips
            )
            windows.append(window_video(corpus.videos[v], start, length))
            for r, ok in zip(rows, inside, strict=True):
                st_rel[r], ed_rel[r] = spans[batch[r]][0] - start, spans[batch[r]][1] - start
                keep[r] = ok and spans[batch[r]][1] - spans[batch[r]][0] < cfg.max_clips
        data["localizer_rows_skipped"] += len(qs) - sum(keep)
        vb = build_video_batch(windows, cfg.token_dim)
        tok, tmask = pad_tokens([train_tokens[i] for i in batch], cfg.max_tokens + 2)
        if cfg.augment:
            vb.feats = augment(vb.feats, vb.mask, cfg.augment_prob, allow_shuffle=False, generator=gen)
            if vb.seg_tokens.shape[1]:
                vb.seg_tokens = augment(vb.seg_tokens, vb.seg_token_mask, cfg.augment_prob, generator=gen)
            tok = augment(tok, tmask, cfg.augment_prob, generator=gen)
        vb, tok, tmask = vb.to(dev), tok.to(dev), tmask.to(dev)
        positive = torch.zeros(len(qs), len(vids), dtype=torch.bool, device=dev)
        cols = torch.tensor(cols_list, device=dev)
        positive[torch.arange(len(qs), device=dev), cols] = True
        kept = torch.tensor(keep, device=dev)
        with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
            v_temp, v_mask = model.encode_videos(vb)
            q, q_states = model.encode_queries(tok, tmask)
            scores = model.video_scores(q, v_temp, v_mask)  # (Q, V)
            l_ctx, l_q = ranking_loss(
                scores.float(), positive, cfg.margin, cfg.hard_negatives if hard else None
            )
            l_loc = scores.new_zeros((), dtype=torch.float32)
            if kept.any():
                kc = cols[kept]
                loc = model.localize(v_temp[kc], v_mask[kc], q[kept], q_states[kept], tmask[kept])
                l_loc = localizer_loss(
                    loc.start_logits.float(),
                    loc.end_logits.float(),
                    None if loc.importance is None else loc.importance.float(),
                    v_mask[kc].float(),
                    torch.tensor(st_rel, device=dev)[kept],
                    torch.tensor(ed_rel, device=dev)[kept],
                    cfg.highlight_loss,
                    highlight_weight,
                )
        return l_ctx + l_q, l_loc, cfg.retrieval_weight * (l_ctx + l_q) + cfg.localizer_weight * l_loc

    bar = tqdm(
        range(start_step, settings.steps),
        desc="train",
        disable=not progress,
        initial=start_step,
        total=settings.steps,
    )
    accum = max(1, settings.grad_accum)
    for step in bar:
        model.train()
        hard = settings.hard_negative_after is not None and step >= settings.hard_negative_after
        highlight_weight = min(1.0, step / settings.highlight_warmup) if settings.highlight_warmup else 1.0
        opt.zero_grad(set_to_none=True)
        sums = torch.zeros(3)
        for _ in range(accum):  # each micro-batch keeps its own in-batch negatives (HERO, per GPU)
            l_ret, l_loc, loss = micro_loss(next_batch(), hard, highlight_weight)
            (loss / accum).backward()
            sums += torch.stack([l_ret.detach(), l_loc.detach(), loss.detach()]).float().cpu() / accum
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        opt.step()
        sched.step()
        ret_v, loc_v, loss_v = sums.tolist()
        if not math.isfinite(loss_v):
            raise RuntimeError(f"training diverged at step {step} (loss {loss_v})")
        bar.set_postfix(loss=f"{loss_v:.3f}", ret=f"{ret_v:.3f}", loc=f"{loc_v:.3f}")
        last = step + 1 == settings.steps
        if (step + 1) % settings.eval_every == 0 or last:
            entry: dict[str, Any] = {"step": step + 1, "loss": round(loss_v, 4)}
            if val_queries:
                metrics = compute_metrics(
                    predict_corpus(model, val_queries, val_tokens, val_corpus or corpus, settings.val_top_k), val_queries
                )
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
                                "data": data,
                            },
                        )
            history.append(entry)
            if out:
                out.mkdir(parents=True, exist_ok=True)
                state = _state_tensors(model, opt, gen)
                state["order"] = order.contiguous()
                save_file(state, str(out / "resume.safetensors"))
                (out / "resume.json").write_text(
                    json.dumps({"step": step + 1, "pos": pos, "best": best, "history": history, "data": data})
                )
    if out:
        save_checkpoint(
            out / "last",
            model,
            feature_settings,
            text_encoder or {},
            {
                "step": settings.steps,
                "val_metrics": best,
                "train": asdict(settings),
                "init": init_info,
                "data": data,
            },
        )
    return TrainResult(model, best, history, data)

"""Two-stage inference (paper 2.2, last paragraph): Eq. 3 ranks every video, the localizer runs on
the top-k, and HERO-style moment scoring (exp(alpha * s_v) * P_st(i) * P_ed(j), 2 <= j - i <= 15,
per-video NMS at IoU 0.5) ranks moments across the corpus, as TVR predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from c2f.data.dataset import corpus_from_feature_dir, text_token_encoder
from c2f.data.tvr import TVRQuery
from c2f.eval.predictions import TVRPredictions
from c2f.model.c2f import C2FModel
from c2f.model.checkpoint import load_checkpoint
from c2f.model.decode import corpus_moments, moment_scores, temporal_nms, top_moments
from c2f.model.inference import Corpus, encode_corpus, localize_pairs, pad_tokens


@torch.inference_mode()
def predict_corpus(
    model: C2FModel,
    queries: list[TVRQuery],
    query_tokens: list[np.ndarray],
    corpus: Corpus,
    top_k_videos: int = 100,
    max_moments: int = 100,
    batch: int = 32,
    alpha: float = 20.0,
) -> TVRPredictions:
    model.eval()
    dev = model.device
    v_all, m_all = encode_corpus(model, corpus, batch)
    name_to_idx = {n: i for i, n in enumerate(corpus.names)}
    k = min(top_k_videos, len(corpus.videos))
    vcmr, svmr, vr = [], [], []
    for s in range(0, len(queries), batch):
        qs = queries[s : s + batch]
        tok, tmask = pad_tokens(query_tokens[s : s + batch], model.cfg.max_tokens + 2)
        tok, tmask = tok.to(dev), tmask.to(dev)
        q, q_states = model.encode_queries(tok, tmask)
        scores = model.video_scores(q, v_all, m_all)  # (b, V)
        top_s, top_i = scores.topk(k, dim=1)
        for r, query in enumerate(qs):
            idx = top_i[r]
            st, ed, _ = localize_pairs(
                model,
                v_all[idx],
                m_all[idx],
                q[r : r + 1].expand(k, -1),
                q_states[r : r + 1].expand(k, -1, -1),
                tmask[r : r + 1].expand(k, -1),
            )
            per_video = []
            for j, vi in enumerate(idx.tolist()):
                n = int(m_all[vi].sum())
                per_video.append((vi, st[j, :n], ed[j, :n], float(top_s[r, j]), corpus.clip_times(vi)))
            moments = corpus_moments(per_video, alpha=alpha, top_n=max_moments)
            vcmr.append(
                {
                    "desc_id": query.desc_id,
                    "desc": query.desc,
                    "predictions": [[v, st_, ed_, sc] for v, st_, ed_, sc in moments],
                }
            )
            vr.append(
                {
                    "desc_id": query.desc_id,
                    "desc": query.desc,
                    "predictions": [
                        [int(v), 0.0, 0.0, float(sc)]
                        for v, sc in zip(idx.tolist(), top_s[r].tolist(), strict=True)
                    ],
                }
            )
            # SVMR: the ground-truth video only
            gi = name_to_idx.get(query.vid_name)
            if gi is None:
                svmr.append({"desc_id": query.desc_id, "desc": query.desc, "predictions": []})
                continue
            n = int(m_all[gi].sum())
            st1, ed1, _ = localize_pairs(
                model,
                v_all[gi : gi + 1],
                m_all[gi : gi + 1],
                q[r : r + 1],
                q_states[r : r + 1],
                tmask[r : r + 1],
            )
            i1, j1, sc1 = top_moments(moment_scores(st1[0, :n], ed1[0, :n], 0.0, alpha), 200)
            times = corpus.clip_times(gi)
            spans = np.stack([times[i1, 0], times[j1, 1]], 1) if len(i1) else np.zeros((0, 2))
            keep = temporal_nms(spans, sc1, 0.5)[:max_moments] if len(i1) else []
            svmr.append(
                {
                    "desc_id": query.desc_id,
                    "desc": query.desc,
                    "predictions": [
                        [gi, float(spans[t, 0]), float(spans[t, 1]), float(sc1[t])] for t in keep
                    ],
                }
            )
    return TVRPredictions(video2idx=name_to_idx, tasks={"VCMR": vcmr, "SVMR": svmr, "VR": vr})


def predict_from_checkpoint(
    checkpoint: str | Path,
    queries: list[TVRQuery],
    features_dir: str | Path,
    top_k_videos: int = 100,
    device: str | None = None,
) -> TVRPredictions:
    """`c2f evaluate --checkpoint`: features are <vid_name>.safetensors files; query tokens from the
    checkpoint's text encoder (CLIP per-token outputs)."""
    model, meta = load_checkpoint(checkpoint, device)
    corpus, settings = corpus_from_feature_dir(features_dir, meta, model.cfg)
    encode = text_token_encoder(meta["text_encoder"], settings, device)
    return predict_corpus(
        model, queries, encode([q.desc for q in queries]), corpus, top_k_videos=top_k_videos
    )

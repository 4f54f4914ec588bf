"""The one TVR prediction path of a learned C2F model (paper 2.2, last paragraph).

Eq. 3 ranks every video, the localizer runs on the top-k, and HERO-style moment scoring
(exp(alpha * s_v) * P_st(i) * P_ed(j), 2 <= j - i <= 15, per-video NMS at IoU 0.5) ranks moments
across the corpus; SVMR runs the localizer on the right video alone. Up to 100 VCMR and 100 SVMR
predictions per query, as the official evaluator reads them.

`c2f evaluate --checkpoint`, validation during training, the learned search backend
(c2f/search/learned.py, hence `Library.search` and the demo's error analysis) all go through
`Predictor` and the functions here, so they compute the same numbers in the same order:
- a video is encoded alone, in consecutive windows of max_clips clips (c2f/data/windows.py),
  never cut: V_temp (N, d) for every clip;
- a query is encoded alone (its tokens, then the query encoder);
- Eq. 3 scores come from `retrieval_vectors` (the unit vectors the clip index stores) in float64,
  ranked with the index's tie rule (c2f/index/ranking.py);
- the top-k videos of a query are localized in one padded batch, in rank order; the right video
  for SVMR in a batch of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from c2f.data.dataset import TokenEncoder, text_token_encoder, video_input
from c2f.data.tvr import TVRQuery
from c2f.data.windows import window_video
from c2f.errors import C2FError
from c2f.eval.predictions import TVRPredictions
from c2f.features import FeatureSettings, load_features
from c2f.index.ranking import order_videos_with_ties, tie_tolerance
from c2f.index.scan import float32_error
from c2f.model.c2f import C2FModel, VideoInput, build_video_batch
from c2f.model.checkpoint import load_checkpoint
from c2f.model.decode import corpus_moments, moment_scores, temporal_nms, top_moments
from c2f.model.inference import Corpus, pad_tokens

MAX_PREDICTIONS = 100  # per query and task: the official evaluator reads up to R@100
ALPHA = 20.0  # HERO's exp(alpha * video score) in the moment score


@dataclass
class EncodedQuery:
    q: torch.Tensor  # (1, d) on the model's device
    emb: torch.Tensor  # (1, L, d) what the localizer takes
    mask: torch.Tensor  # (1, L)
    vector: np.ndarray  # (d,) float32 unit vector in the retrieval space (Eq. 3)
    truncated: bool  # the query had more tokens than the model reads


@dataclass
class Boundaries:
    """The localizer's output for one (query, video) pair, padding removed."""

    start_prob: np.ndarray  # (N,) softmax over the video's clips
    end_prob: np.ndarray  # (N,)
    importance: np.ndarray | None  # (N,) in [0, 1] (Fusion), None (Base)


@dataclass
class PredictionVideo:
    """One video of a prediction corpus."""

    name: str  # the key of video2idx (TVR's vid_name)
    video: VideoInput
    clip_times: np.ndarray  # (N, 2) seconds


def retrieval_vectors(v_temp: torch.Tensor) -> np.ndarray:
    """(N, d) float32 unit vectors of V_temp, normalised exactly as ClipIndex stores them."""
    v = F.normalize(v_temp.float(), dim=-1).numpy()
    return np.ascontiguousarray(v / np.linalg.norm(v, axis=1, keepdims=True))


def unit_query(vector: np.ndarray) -> np.ndarray:
    """(d,) float32 query normalised exactly as ClipIndex normalises it."""
    q = np.asarray(vector, np.float32)[None]
    return (q / np.linalg.norm(q, axis=1, keepdims=True))[0]


def eq3_score(vectors: np.ndarray, query: np.ndarray) -> float:
    """Eq. 3: max over clips of the cosine in float64 (exact products), from retrieval vectors. Each
    row is summed by numpy's own pairwise reduction, not BLAS, so a clip's score does not depend on
    which other rows are computed with it: every path gets the same bits."""
    q = unit_query(query).astype(np.float64)
    return float((vectors.astype(np.float64) * q).sum(axis=1).max())


class CorpusScorer:
    """Eq. 3 for every video of a corpus: a float32 product over all clips finds the videos that can
    be in the top k (within the float32 bound and the tie tolerance of c2f/index), and only those
    are scored exactly by `eq3_score`; the ranking equals ranking every video by eq3_score."""

    def __init__(self, vectors: Sequence[np.ndarray]) -> None:
        self.vectors = list(vectors)
        self.dim = self.vectors[0].shape[1]
        self.starts = np.cumsum([0] + [len(v) for v in self.vectors[:-1]])
        self.all = torch.from_numpy(np.concatenate(self.vectors))  # (R, d) float32

    def top(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """[(video position, Eq. 3 score)] of the k best videos, best first (ties by position)."""
        q = unit_query(query)
        approx = np.maximum.reduceat((self.all @ torch.from_numpy(q)).numpy(), self.starts)  # (V,)
        k = min(k, len(approx))
        margin = 2 * (float32_error(self.dim) + tie_tolerance(self.dim))
        kth = float(np.partition(approx, len(approx) - k)[len(approx) - k])
        candidates = np.flatnonzero(approx >= kth - margin)
        exact = [eq3_score(self.vectors[i], query) for i in candidates]  # normalises query as the index does
        order = rank_by_score(exact, candidates.tolist(), self.dim)[:k]
        return [(int(candidates[o]), exact[o]) for o in order]


def rank_by_score(scores: Sequence[float], keys: Sequence[int], dim: int) -> list[int]:
    """Positions best first; scores within the index's tie tolerance ordered by key."""
    return order_videos_with_ties(
        np.asarray(scores, np.float64), np.asarray(keys, np.int64), tie_tolerance(dim)
    ).tolist()


class Predictor:
    """A C2F model and its frozen text encoder: the per-video and per-query computations that every
    prediction path shares."""

    def __init__(self, model: C2FModel, encode_tokens: TokenEncoder | None = None) -> None:
        self.model = model.eval()
        self.encode_tokens = encode_tokens

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path, device: str | None = None
    ) -> tuple[Predictor, dict[str, Any], FeatureSettings | None]:
        model, meta = load_checkpoint(checkpoint, device)
        settings = FeatureSettings.from_dict(meta["feature_settings"]) if meta.get("feature_settings") else None
        return cls(model, text_token_encoder(meta["text_encoder"], settings, device)), meta, settings

    @property
    def max_query_tokens(self) -> int:
        return self.model.cfg.max_tokens + 2

    @torch.inference_mode()
    def video_states(self, video: VideoInput) -> torch.Tensor:
        """V_temp (N, d) float32 on the CPU: consecutive windows of max_clips clips, each with its own
        positions, encoded in one batch and put back to back."""
        w = self.model.cfg.max_clips
        n = len(video.feats)
        windows = [window_video(video, s, w) for s in range(0, n, w)]
        vb = build_video_batch(windows, self.model.cfg.token_dim, w).to(self.model.device)
        v, m = self.model.encode_videos(vb)
        return v[m].float().cpu()  # (N, d)

    @torch.inference_mode()
    def encode_query(self, text: str, tokens: np.ndarray | None = None) -> EncodedQuery:
        """One query alone (its tokens from the text encoder unless given)."""
        if tokens is None:
            if self.encode_tokens is None:
                raise C2FError("this predictor has no text encoder: give the query tokens")
            tokens = self.encode_tokens([text])[0]
        tok, mask = pad_tokens([tokens], self.max_query_tokens)
        tok, mask = tok.to(self.model.device), mask.to(self.model.device)
        q, emb = self.model.encode_queries(tok, mask)
        vector = F.normalize(q.float(), dim=-1)[0].cpu().numpy()
        return EncodedQuery(q, emb, mask, vector, len(tokens) > self.max_query_tokens)

    @torch.inference_mode()
    def localize(self, query: EncodedQuery, states: Sequence[torch.Tensor]) -> list[Boundaries]:
        """The localizer on the given videos (V_temp (N_i, d) each) in one padded batch, in order."""
        dev = self.model.device
        n = max(len(s) for s in states)
        v = torch.zeros(len(states), n, states[0].shape[1])
        vmask = torch.zeros(len(states), n, dtype=torch.bool)
        for b, s in enumerate(states):
            v[b, : len(s)], vmask[b, : len(s)] = s, True
        k = len(states)
        out = self.model.localize(
            v.to(dev, query.q.dtype),
            vmask.to(dev),
            query.q.expand(k, -1),
            query.emb.expand(k, -1, -1),
            query.mask.expand(k, -1),
        )
        st = out.start_logits.float().softmax(-1).cpu().numpy()
        ed = out.end_logits.float().softmax(-1).cpu().numpy()
        imp = out.importance.float().cpu().numpy() if out.importance is not None else None
        lengths = [len(s) for s in states]
        return [
            Boundaries(st[b, :m], ed[b, :m], imp[b, :m] if imp is not None else None)
            for b, m in enumerate(lengths)
        ]


def vcmr_moments(
    ranked: Sequence[tuple[int, Boundaries, float, np.ndarray]], top_n: int = MAX_PREDICTIONS
) -> list[list]:
    """VCMR predictions [video_idx, st, ed, score] from the top videos (video_idx, boundaries,
    Eq. 3 score, clip_times (N, 2)) in rank order: HERO's corpus-level moment ranking."""
    per_video = [(i, b.start_prob, b.end_prob, s, t) for i, b, s, t in ranked]
    return [[v, st, ed, sc] for v, st, ed, sc in corpus_moments(per_video, alpha=ALPHA, top_n=top_n)]


def svmr_moments(
    video_idx: int, bounds: Boundaries, clip_times: np.ndarray, top_n: int = MAX_PREDICTIONS
) -> list[list]:
    """SVMR predictions [video_idx, st, ed, score] in the right video: HERO's scores without the
    video term, the 200 best spans, NMS at IoU 0.5, the top_n kept."""
    i, j, sc = top_moments(moment_scores(bounds.start_prob, bounds.end_prob, 0.0, ALPHA), 200)
    if not len(i):
        return []
    times = np.asarray(clip_times)
    spans = np.stack([times[i, 0], times[j, 1]], 1)  # (M, 2) seconds
    keep = temporal_nms(spans, sc, 0.5)[:top_n]
    return [[video_idx, float(spans[t, 0]), float(spans[t, 1]), float(sc[t])] for t in keep]


def vr_entries(ranked: Sequence[tuple[int, float]]) -> list[list]:
    """VR predictions [video_idx, 0, 0, Eq. 3 score] in rank order."""
    return [[int(i), 0.0, 0.0, float(s)] for i, s in ranked]


@torch.inference_mode()
def predict_tvr(
    predictor: Predictor,
    queries: Sequence[TVRQuery],
    videos: Sequence[PredictionVideo],
    query_tokens: Sequence[np.ndarray] | None = None,
    top_k_videos: int = 100,
    progress=None,
) -> TVRPredictions:
    """TVR predictions (VCMR, SVMR, VR) of every query over the videos; video2idx follows the
    order of `videos`. Query tokens come from the predictor's text encoder unless given."""
    if not videos:
        raise C2FError("no videos to predict on")
    states = [predictor.video_states(v.video) for v in videos]  # (N_i, d) each
    scorer = CorpusScorer([retrieval_vectors(s) for s in states])
    name_to_idx = {v.name: i for i, v in enumerate(videos)}
    vcmr, svmr, vr = [], [], []
    for n, query in enumerate(queries):
        if progress:
            progress(n / max(1, len(queries)), f"query {n + 1}/{len(queries)}")
        enc = predictor.encode_query(
            " ".join(query.desc.split()), None if query_tokens is None else query_tokens[n]
        )
        top = scorer.top(enc.vector, top_k_videos)  # [(video, score)] best first
        bounds = predictor.localize(enc, [states[i] for i, _ in top])
        ranked = [(i, b, s, videos[i].clip_times) for (i, s), b in zip(top, bounds, strict=True)]
        head = {"desc_id": query.desc_id, "desc": query.desc}
        vcmr.append({**head, "predictions": vcmr_moments(ranked)})
        vr.append({**head, "predictions": vr_entries(top)})
        gi = name_to_idx.get(query.vid_name)
        right = [] if gi is None else svmr_moments(gi, predictor.localize(enc, [states[gi]])[0], videos[gi].clip_times)
        svmr.append({**head, "predictions": right})
    return TVRPredictions(video2idx=name_to_idx, tasks={"VCMR": vcmr, "SVMR": svmr, "VR": vr})


def predict_corpus(
    model: C2FModel,
    queries: list[TVRQuery],
    query_tokens: list[np.ndarray],
    corpus: Corpus,
    top_k_videos: int = 100,
) -> TVRPredictions:
    """`predict_tvr` on a model corpus with given query tokens (validation during training)."""
    videos = [
        PredictionVideo(name, video, corpus.clip_times(i))
        for i, (name, video) in enumerate(zip(corpus.names, corpus.videos, strict=True))
    ]
    return predict_tvr(Predictor(model), queries, videos, query_tokens, top_k_videos)


def videos_from_feature_dir(
    directory: str | Path, predictor: Predictor, settings: FeatureSettings | None
) -> list[PredictionVideo]:
    """Every <vid_name>.safetensors of a folder, by name, with its subtitles' tokens (as the
    library's videos are read), checked against the checkpoint's feature settings."""
    d = Path(directory)
    files = sorted(d.glob("*.safetensors"), key=lambda p: p.stem)
    if not files:
        raise C2FError(f"no feature files (*.safetensors) in {d}")
    out = []
    for f in files:
        feats = load_features(f, expected=settings)
        if feats.dim != predictor.model.cfg.video_dim:
            raise C2FError(f"{f.name}: {feats.dim}-d features, the model expects {predictor.model.cfg.video_dim}")
        out.append(PredictionVideo(f.stem, video_input(feats, predictor.encode_tokens), feats.clip_times))
    return out


def predict_from_checkpoint(
    checkpoint: str | Path,
    queries: list[TVRQuery],
    features_dir: str | Path,
    top_k_videos: int = 100,
    device: str | None = None,
    progress=None,
) -> TVRPredictions:
    """`c2f evaluate --checkpoint`: features are <vid_name>.safetensors files; query and subtitle
    tokens from the checkpoint's text encoder."""
    predictor, _, settings = Predictor.from_checkpoint(checkpoint, device)
    videos = videos_from_feature_dir(features_dir, predictor, settings)
    return predict_tvr(predictor, queries, videos, top_k_videos=top_k_videos, progress=progress)

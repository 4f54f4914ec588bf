"""Qualitative error analysis of a library against TVR-format ground truth.

Every annotation whose `vid_name` names a video of the library (its file name, with or without the
extension; a name two videos share is skipped as ambiguous) is searched; the results become a TVR prediction file (VCMR from the ranked moments, VR
from the ranked videos, SVMR from the localizer run on the right video), scored with the exact
evaluator, and broken down per query (rank of the right video, best IoU, failure kind).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from c2f.data.tvr import TVRQuery, load_annotations
from c2f.errors import AnnotationError, LibraryError
from c2f.eval.metrics import QueryOutcome, compute_metrics, per_query_outcomes
from c2f.eval.predictions import TVRPredictions
from c2f.search.types import SearchResult, VideoResult


@dataclass
class LibraryEvaluation:
    metrics: dict
    outcomes: list[QueryOutcome]
    predictions: TVRPredictions
    queries: list[TVRQuery]
    results: dict = field(default_factory=dict)  # desc_id -> SearchResult
    gt_videos: dict = field(default_factory=dict)  # desc_id -> VideoResult of the right video
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line or 0, reason)

    def metric_rows(self) -> list[list]:
        """[task, metric, value %] for every official metric, then VALUE's AveR per task."""
        rows = [
            [task, key, val] for task in ("VCMR", "SVMR", "VR") for key, val in self.metrics[task].items()
        ]
        return rows + [[task, "AveR", val] for task, val in self.metrics["AveR"].items()]

    def outcome_rows(self) -> list[list]:
        """[desc_id, query, video, rank of the right video, best IoU, failure kind] per query."""
        return [
            [o.desc_id, o.desc, o.vid_name, o.rank_of_right_video or "-", round(o.best_iou, 3), o.kind]
            for o in self.outcomes
        ]

    def query_video(self, row: int) -> tuple[VideoResult, tuple[float, float]]:
        """The right video's curves for the query on `row`, and its ground-truth span."""
        q = self.queries[row]
        return self.gt_videos[q.desc_id], q.ts


def _video_names(library) -> dict[str, list]:
    """File name and file stem -> the indexed videos that carry it (two uploads may share one)."""
    names: dict[str, list] = {}
    for rec in library.list():
        if rec.status != "indexed":
            continue
        for key in {rec.name, Path(rec.name).stem}:
            names.setdefault(key, []).append(rec)
    return names


def localize_video(library, backend, qenc, rec, max_spans: int) -> VideoResult:
    """The backend's localizer on one given video (used for SVMR and for the right video's curves)."""
    from c2f.search.types import Moment

    feats = library.load_features(rec.video_id)
    sim = backend.clip_vectors(feats) @ qenc.vector
    loc = backend.localize(qenc, feats, sim, max_spans)
    vs = float(np.max(sim))
    moments = [
        Moment(
            rec.video_id, rec.name, float(feats.clip_times[a, 0]), float(feats.clip_times[b, 1]), float(s), vs
        )
        for a, b, s in loc.spans
    ]
    return VideoResult(
        rec.video_id,
        rec.name,
        rec.stored_path,
        vs,
        feats.clip_times,
        np.asarray(sim, float),
        loc.importance,
        loc.start_prob,
        loc.end_prob,
        moments,
    )


def evaluate_library(
    library,
    backend,
    annotations: str | Path,
    top_k_videos: int = 10,
    moments_per_video: int = 5,
    progress=None,
) -> LibraryEvaluation:
    names = _video_names(library)
    if not names:
        raise LibraryError("the library is empty: add the annotated videos first")
    queries, problems = load_annotations(annotations, strict=False)
    skipped = list(problems)
    usable, right_video = [], {}
    for q in queries:
        matches = names.get(q.vid_name, [])
        if len(matches) == 1:
            usable.append(q)
            right_video[q.desc_id] = matches[0]
        elif matches:
            skipped.append((0, f"desc_id {q.desc_id}: {len(matches)} videos are named {q.vid_name!r}"))
        else:
            skipped.append((0, f"desc_id {q.desc_id}: video {q.vid_name!r} is not in the library"))
    if not usable:
        raise AnnotationError(str(annotations), skipped or [(0, "no usable annotation")])
    # videos are keyed by id: two files with the same name are two videos
    video2idx = {r.video_id: i for i, r in enumerate(library.list()) if r.status == "indexed"}
    idx_of = video2idx
    vcmr, svmr, vr, results, gt_videos = [], [], [], {}, {}
    for n, q in enumerate(usable):
        if progress:
            progress(n / len(usable), f"query {n + 1}/{len(usable)}")
        res: SearchResult = library.search(
            q.desc, backend, top_k_videos=top_k_videos, moments_per_video=moments_per_video
        )
        results[q.desc_id] = res
        vcmr.append(
            {
                "desc_id": q.desc_id,
                "desc": q.desc,
                "predictions": [[idx_of[m.video_id], m.start, m.end, m.score] for m in res.moments][:100],
            }
        )
        vr.append(
            {
                "desc_id": q.desc_id,
                "desc": q.desc,
                "predictions": [[idx_of[v.video_id], 0.0, 0.0, v.video_score] for v in res.videos],
            }
        )
        rec = right_video[q.desc_id]
        gt = localize_video(library, backend, backend.encode_query(q.desc), rec, moments_per_video)
        gt_videos[q.desc_id] = gt
        svmr.append(
            {
                "desc_id": q.desc_id,
                "desc": q.desc,
                "predictions": [[idx_of[rec.video_id], m.start, m.end, m.score] for m in gt.moments],
            }
        )
    # annotations name videos by file name; the prediction file names them by video id
    queries_by_id = [
        TVRQuery(q.desc_id, q.desc, right_video[q.desc_id].video_id, q.duration, q.ts, q.type) for q in usable
    ]
    preds = TVRPredictions(video2idx, {"VCMR": vcmr, "SVMR": svmr, "VR": vr})
    metrics = compute_metrics(preds, queries_by_id)
    outcomes = per_query_outcomes(preds, queries_by_id, iou_thd=0.5, k=10)
    return LibraryEvaluation(metrics, outcomes, preds, usable, results, gt_videos, skipped)

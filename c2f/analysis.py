"""Qualitative error analysis of a library against TVR-format ground truth.

Every annotation whose `vid_name` names a video of the library (its file name, with or without the
extension; a name two videos share is skipped as ambiguous) is searched; the results become a TVR prediction file (VCMR from the ranked moments, VR
from the ranked videos, SVMR from the localizer run on the right video), scored with the exact
evaluator, and broken down per query (rank of the right video, best IoU, failure kind). The file is
the official one: 100 videos per query in the coarse stage, up to 100 VCMR and SVMR moments; with a
learned checkpoint it equals the file `c2f evaluate --checkpoint` writes for the same videos.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from c2f.data.tvr import TVRQuery, load_annotations
from c2f.errors import AnnotationError, LibraryError
from c2f.eval.metrics import QueryOutcome, compute_metrics, per_query_outcomes
from c2f.eval.predict import MAX_PREDICTIONS, Boundaries, svmr_moments, vcmr_moments, vr_entries
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


def _file_keys(library) -> dict[str, str]:
    """video_id -> its key in the prediction file: the file stem (TVR's vid_name, so the file reads
    like `c2f evaluate`'s) when no two indexed videos share it, else every video by its id."""
    recs = [r for r in library.list() if r.status == "indexed"]
    stems = [Path(r.name).stem for r in recs]
    if len(set(stems)) == len(stems):
        return {r.video_id: stem for r, stem in zip(recs, stems, strict=True)}
    return {r.video_id: r.video_id for r in recs}


def evaluate_library(
    library,
    backend,
    annotations: str | Path,
    top_k_videos: int = MAX_PREDICTIONS,
    moments_per_video: int = 5,
    progress=None,
) -> LibraryEvaluation:
    """Official TVR predictions of the library's searches: at least MAX_PREDICTIONS (100) videos per
    query go into the coarse stage whatever `top_k_videos` asks, and up to 100 VCMR and SVMR
    moments are kept. For a learned backend, VCMR and SVMR are HERO's moment ranking over the
    searched videos' start/end curves (c2f.eval.predict: the same file `c2f evaluate --checkpoint`
    writes); for the others, the backend's own moments."""
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
    key_of = _file_keys(library)
    video2idx = {key: i for i, key in enumerate(sorted(key_of.values()))}
    idx_of = {vid: video2idx[key] for vid, key in key_of.items()}
    hero_moments = getattr(backend, "predictor", None) is not None  # a learned C2F checkpoint
    vcmr, svmr, vr, results, gt_videos = [], [], [], {}, {}
    for n, q in enumerate(usable):
        if progress:
            progress(n / len(usable), f"query {n + 1}/{len(usable)}")
        res: SearchResult = library.search(
            q.desc,
            backend,
            top_k_videos=max(top_k_videos, MAX_PREDICTIONS),
            moments_per_video=moments_per_video,
        )
        results[q.desc_id] = res
        rec = right_video[q.desc_id]
        gt = localize_video(library, backend, backend.encode_query(q.desc), rec, MAX_PREDICTIONS)
        gt_videos[q.desc_id] = gt
        if hero_moments:
            ranked = [(idx_of[v.video_id], _boundaries(v), v.video_score, v.clip_times) for v in res.videos]
            moments = vcmr_moments(ranked)
            right = svmr_moments(idx_of[rec.video_id], _boundaries(gt), gt.clip_times)
        else:
            moments = [[idx_of[m.video_id], m.start, m.end, m.score] for m in res.moments][:MAX_PREDICTIONS]
            right = [[idx_of[rec.video_id], m.start, m.end, m.score] for m in gt.moments][:MAX_PREDICTIONS]
        head = {"desc_id": q.desc_id, "desc": q.desc}
        vcmr.append({**head, "predictions": moments})
        vr.append({**head, "predictions": vr_entries([(idx_of[v.video_id], v.video_score) for v in res.videos])})
        svmr.append({**head, "predictions": right})
    # annotations name videos by file name; the prediction file by key_of (the stem, or the id)
    queries_by_key = [
        TVRQuery(q.desc_id, q.desc, key_of[right_video[q.desc_id].video_id], q.duration, q.ts, q.type)
        for q in usable
    ]
    preds = TVRPredictions(video2idx, {"VCMR": vcmr, "SVMR": svmr, "VR": vr})
    metrics = compute_metrics(preds, queries_by_key)
    outcomes = per_query_outcomes(preds, queries_by_key, iou_thd=0.5, k=10)
    return LibraryEvaluation(metrics, outcomes, preds, usable, results, gt_videos, skipped)


def _boundaries(video: VideoResult) -> Boundaries:
    """The localizer's start/end curves of a searched video, as c2f.eval.predict reads them."""
    return Boundaries(video.start_prob, video.end_prob, None)

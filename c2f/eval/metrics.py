"""The TVR evaluator with the official code's exact semantics (numbers identical on any file).

- Only the first 100 predictions of a query count; order matters; scores are ignored.
- Predictions and ground truth are float32, as in the official code, so IoU ties at exactly
  0.5 / 0.7 resolve identically: iou = max(0, min(ed) - max(st)) / (max(ed) - min(st)), 0 when the
  denominator is 0, multiplied by "right video".
- VCMR R@K at IoU t: % of queries with a correct prediction among the first K (duplicated videos
  are not collapsed). SVMR: predictions on the right video first, then the first K. VR: the right
  video among the first K. Rounded with round(100 * x, 2).
- A query without predictions (absent or empty) is a miss; the denominator is every ground-truth
  query. (The official script asserts both sets of desc_ids match and crashes on an empty list.)
- Per query type ("v", "t", "vt") when every ground-truth row has one, under "<TASK>_by_type".
- VALUE's AveR (extra key "AveR"): mean of R@1, R@5, R@10 (IoU 0.7 for VCMR and SVMR).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from c2f.data.tvr import TVRQuery
from c2f.eval.predictions import TASKS, TVRPredictions

IOU_THDS = (0.5, 0.7)
TOPKS = (1, 5, 10, 100)
MAX_PRED = 100
TYPES = ("v", "t", "vt")


def temporal_iou(preds: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """preds (n, 2), gt (2,), both float32 -> (n,) float32, the official formula."""
    inter = np.maximum(np.float32(0), np.minimum(preds[:, 1], gt[1]) - np.maximum(preds[:, 0], gt[0]))
    union = np.maximum(preds[:, 1], gt[1]) - np.minimum(preds[:, 0], gt[0])
    return np.divide(inter, union, out=np.zeros_like(inter), where=union != 0)


def _pct(x: float) -> float | None:
    return None if np.isnan(x) else round(float(x) * 100, 2)


@dataclass
class _TaskMatrix:
    matched: np.ndarray  # (Q, P) bool: prediction on the right video
    correct: dict[float, np.ndarray]  # iou_thd -> (Q, P) bool


def _task_matrix(entries: list[dict], video2idx: dict[str, int], gt: list[TVRQuery]) -> _TaskMatrix:
    by_id = {e["desc_id"]: e for e in entries}
    q = len(gt)
    matched = np.zeros((q, MAX_PRED), bool)
    correct = {t: np.zeros((q, MAX_PRED), bool) for t in IOU_THDS}
    for row, g in enumerate(gt):
        entry = by_id.get(g.desc_id)
        preds = [p[:3] for p in entry["predictions"]][:MAX_PRED] if entry else []
        if not preds:
            continue
        info = np.asarray(preds, dtype=np.float32)  # (n, 3)
        n = len(info)
        m = info[:, 0] == video2idx.get(g.vid_name, -1)
        iou = temporal_iou(info[:, 1:3], np.asarray(g.ts, dtype=np.float32)) * m
        matched[row, :n] = m
        for t in IOU_THDS:
            correct[t][row, :n] = iou >= np.float32(t)
    return _TaskMatrix(matched, correct)


def _hits(task: str, tm: _TaskMatrix, k: int, thd: float | None) -> np.ndarray:
    """(Q,) bool: query counted as a hit at K (and IoU thd)."""
    if task == "VR":
        return tm.matched[:, :k].any(1)
    if task == "VCMR":
        return tm.correct[thd][:, :k].any(1)
    # SVMR: keep predictions on the right video, then the first k of them
    rank_among_matched = np.cumsum(tm.matched, axis=1)
    return (tm.correct[thd] & tm.matched & (rank_among_matched <= k)).any(1)


def compute_metrics(predictions: TVRPredictions, annotations: list[TVRQuery]) -> dict:
    gt = list({q.desc_id: q for q in annotations}.values())
    use_types = all(q.type in TYPES for q in gt)
    types = np.array([q.type for q in gt]) if use_types else None
    out: dict = {}
    aver: dict = {}
    for task in TASKS:
        if task not in predictions.tasks:
            continue
        tm = _task_matrix(predictions.tasks[task], predictions.video2idx, gt)
        metrics, by_type = {}, {}
        thds = [None] if task == "VR" else list(IOU_THDS)
        for thd in thds:
            for k in TOPKS:
                key = f"r{k}" if thd is None else f"{thd}-r{k}"
                hits = _hits(task, tm, k, thd)
                metrics[key] = _pct(hits.mean()) if len(hits) else None
                if use_types:
                    for t in TYPES:
                        sel = types == t
                        by_type[f"{t}-{key}"] = _pct(hits[sel].sum() / sel.sum()) if sel.any() else None
        out[task] = metrics
        if use_types:
            by_type["desc_type_ratio"] = "v {} t {} vt {}".format(*[_pct(np.mean(types == t)) for t in TYPES])
            out[f"{task}_by_type"] = by_type
        prefix = "" if task == "VR" else "0.7-"
        vals = [metrics[f"{prefix}r{k}"] for k in (1, 5, 10)]
        aver[task] = round(sum(vals) / 3, 2) if None not in vals else None
    out["AveR"] = aver
    return out


@dataclass(frozen=True)
class QueryOutcome:
    desc_id: int | str
    desc: str
    vid_name: str
    rank_of_right_video: int | None  # 1-based position of the first prediction on the right video
    best_iou: float  # best IoU among the first k predictions on the right video (0 if none)
    best_iou_rank: int | None  # 1-based position of that prediction
    kind: str  # "hit", "right video, wrong span", "wrong video"


def per_query_outcomes(
    predictions: TVRPredictions,
    annotations: list[TVRQuery],
    iou_thd: float = 0.7,
    k: int = 10,
    task: str = "VCMR",
) -> list[QueryOutcome]:
    """Error analysis: for each query, where its video came and how well the span fits."""
    by_id = {e["desc_id"]: e for e in predictions.tasks.get(task, [])}
    out = []
    for g in annotations:
        entry = by_id.get(g.desc_id)
        preds = [p[:3] for p in entry["predictions"]][:MAX_PRED] if entry else []
        rank, best, best_rank = None, 0.0, None
        if preds:
            info = np.asarray(preds, dtype=np.float32)
            m = info[:, 0] == predictions.video2idx.get(g.vid_name, -1)
            if m.any():
                rank = int(np.argmax(m)) + 1
            iou = temporal_iou(info[:, 1:3], np.asarray(g.ts, dtype=np.float32)) * m
            top = iou[:k]
            if len(top) and top.max() > 0:
                best_rank = int(top.argmax()) + 1
                best = float(top.max())
        if best >= np.float32(iou_thd) and best_rank is not None:
            kind = "hit"
        elif rank is not None and rank <= k:
            kind = "right video, wrong span"
        else:
            kind = "wrong video"
        out.append(QueryOutcome(g.desc_id, g.desc, g.vid_name, rank, best, best_rank, kind))
    return out

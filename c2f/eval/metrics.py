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
from itertools import chain

import numpy as np

from c2f.data.tvr import TVRQuery
from c2f.errors import C2FError
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
    iou: np.ndarray  # (Q, P) float32: temporal IoU, 0 on a wrong video or past a query's predictions
    correct: dict[float, np.ndarray]  # iou_thd -> (Q, P) bool


def _flat_predictions(preds_per_query: list[list]) -> np.ndarray:
    """(total, 3) float32 [video_idx, st, ed] of every query's predictions, in order."""
    flat = list(chain.from_iterable(preds_per_query))
    try:
        widths = np.fromiter(map(len, flat), dtype=np.int64, count=len(flat))
        if (widths == 4).all():  # the official layout: one C-level pass over every number
            arr = np.fromiter(chain.from_iterable(flat), np.float32, count=4 * len(flat))
            return arr.reshape(-1, 4)[:, :3]
        if (widths >= 3).all():
            return np.array([p[:3] for p in flat], dtype=np.float32).reshape(-1, 3)
    except (ValueError, TypeError):
        pass
    raise C2FError("every prediction must be [video_idx, st, ed, score] with numbers")


def _task_matrix(entries: list[dict], video2idx: dict[str, int], gt: list[TVRQuery]) -> _TaskMatrix:
    by_id = {e["desc_id"]: e["predictions"] for e in entries}
    preds = [by_id.get(g.desc_id, []) for g in gt]
    preds = [p if len(p) <= MAX_PRED else p[:MAX_PRED] for p in preds]
    counts = np.fromiter(map(len, preds), dtype=np.int64, count=len(gt))  # (Q,)
    info = _flat_predictions(preds)  # (total, 3)
    rows = np.repeat(np.arange(len(gt)), counts)  # (total,) query row of each prediction
    cols = np.arange(len(info)) - np.repeat(np.cumsum(counts) - counts, counts)  # rank - 1
    right_vid = np.array([video2idx.get(g.vid_name, -1) for g in gt], dtype=np.float32)  # (Q,)
    gt_ts = np.array([g.ts for g in gt], dtype=np.float32).reshape(-1, 2)  # (Q, 2)
    m = info[:, 0] == right_vid[rows]
    g = gt_ts[rows]
    inter = np.maximum(np.float32(0), np.minimum(info[:, 2], g[:, 1]) - np.maximum(info[:, 1], g[:, 0]))
    union = np.maximum(info[:, 2], g[:, 1]) - np.minimum(info[:, 1], g[:, 0])
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union != 0) * m
    matched = np.zeros((len(gt), MAX_PRED), bool)
    iou_mat = np.zeros((len(gt), MAX_PRED), np.float32)
    matched[rows, cols] = m
    iou_mat[rows, cols] = iou
    return _TaskMatrix(matched, iou_mat, {t: iou_mat >= np.float32(t) for t in IOU_THDS})


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
    """The official evaluator's metrics dict for every task present in `predictions`."""
    gt = list(annotations)
    if len({q.desc_id for q in gt}) != len(gt):
        raise C2FError("the ground truth lists a desc_id twice")
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
    """Error analysis, for each query: where its video first came among the first 100 predictions,
    the best IoU on it among the first k, and whether the query is a hit at (iou_thd, k), found its
    video within k but no good span ("right video, wrong span"), or not ("wrong video")."""
    if task not in predictions.tasks:
        raise C2FError(f"the predictions hold no {task} list (they have {sorted(predictions.tasks)})")
    if k < 1:
        raise C2FError(f"k must be at least 1, got {k}")
    tm = _task_matrix(predictions.tasks[task], predictions.video2idx, annotations)
    any_match = tm.matched.any(1)  # (Q,)
    first_match = tm.matched.argmax(1)  # (Q,)
    top_iou = tm.iou[:, :k]  # (Q, k)
    best_col = top_iou.argmax(1)  # (Q,) first of the best
    best = top_iou.max(1)  # (Q,)
    hit = best >= np.float32(iou_thd)
    video_in_k = tm.matched[:, :k].any(1)
    out = []
    for r, g in enumerate(annotations):
        rank = int(first_match[r]) + 1 if any_match[r] else None
        has_best = bool(best[r] > 0)
        kind = "hit" if hit[r] and has_best else "right video, wrong span" if video_in_k[r] else "wrong video"
        out.append(
            QueryOutcome(
                g.desc_id,
                g.desc,
                g.vid_name,
                rank,
                float(best[r]),
                int(best_col[r]) + 1 if has_best else None,
                kind,
            )
        )
    return out

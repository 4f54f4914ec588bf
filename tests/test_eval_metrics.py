"""TVR metrics against hand-worked cases and a literal re-statement of the official loops."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from c2f.data.tvr import TVRQuery, clips_to_span, load_annotations, span_to_clips, write_annotations
from c2f.errors import AnnotationError, C2FError
from c2f.eval.decode import corpus_moments, moment_scores, temporal_nms, top_moments, vslnet_argmax
from c2f.eval.metrics import compute_metrics, per_query_outcomes
from c2f.eval.predictions import TVRPredictions, parse_predictions, read_predictions, write_predictions


def q(i, vid, st, ed, t="v", dur=60.0):
    return TVRQuery(desc_id=i, desc=f"query {i}", vid_name=vid, duration=dur, ts=(st, ed), type=t)


def preds_of(video2idx, task_preds):
    return TVRPredictions(
        video2idx,
        {
            task: [{"desc_id": k, "desc": "", "predictions": v} for k, v in entries.items()]
            for task, entries in task_preds.items()
        },
    )


def test_hand_worked_vcmr_svmr_vr():
    v2i = {"a": 0, "b": 1}
    gt = [q(1, "a", 10, 20), q(2, "b", 0, 10, "t"), q(3, "a", 30, 40, "vt")]
    vcmr = {
        1: [[1, 10, 20, 0.9], [0, 10, 20, 0.8]],  # right span only at rank 2 (rank 1 wrong video)
        2: [[1, 0, 7, 0.9]],  # IoU 0.7 exactly: counts at 0.7 (float32 tie semantics)
        3: [[0, 30, 35, 0.9]],  # IoU 0.5 exactly
    }
    m = compute_metrics(preds_of(v2i, {"VCMR": vcmr, "SVMR": vcmr, "VR": vcmr}), gt)
    assert m["VCMR"]["0.7-r1"] == 33.33 and m["VCMR"]["0.7-r5"] == 66.67
    assert m["VCMR"]["0.5-r1"] == 66.67 and m["VCMR"]["0.5-r5"] == 100.0
    # SVMR filters to the right video first: query 1's right-video prediction becomes its first
    assert m["SVMR"]["0.7-r1"] == 66.67 and m["SVMR"]["0.5-r1"] == 100.0
    assert m["VR"] == {"r1": 66.67, "r5": 100.0, "r10": 100.0, "r100": 100.0}
    assert m["VCMR_by_type"]["v-0.7-r1"] == 0.0 and m["VCMR_by_type"]["t-0.7-r1"] == 100.0
    assert m["VCMR_by_type"]["desc_type_ratio"] == "v 33.33 t 33.33 vt 33.33"
    assert m["AveR"]["VR"] == round((66.67 + 100 + 100) / 3, 2)


def test_only_first_100_count_and_missing_queries_are_misses():
    v2i = {"a": 0}
    gt = [q(1, "a", 0, 10), q(2, "a", 0, 10)]
    wrong = [[0, 40, 50, 1.0]] * 100
    m = compute_metrics(preds_of(v2i, {"VCMR": {1: [*wrong, [0, 0, 10, 0.1]]}}), gt)  # right one is 101st
    assert m["VCMR"]["0.7-r100"] == 0.0
    m = compute_metrics(preds_of(v2i, {"VCMR": {1: [[0, 0, 10, 0.1]], 2: []}}), gt)  # 2 has none
    assert m["VCMR"]["0.7-r1"] == 50.0


def official_reference(submission: dict, ground_truth: list[dict]) -> dict:
    """The official evaluator's loops, re-stated literally (float32, padding, rounding)."""
    v2i = submission["video2idx"]
    out = {}
    for task in ("VCMR", "SVMR", "VR"):
        by_id = {e["desc_id"]: e for e in submission[task]}
        rows = []
        for g in ground_truth:
            p = np.array([e[:3] for e in by_id[g["desc_id"]]["predictions"]][:100], dtype=np.float32)
            m = p[:, 0] == v2i[g["vid_name"]]
            gt = np.array(g["ts"], dtype=np.float32)
            inter = np.maximum(0, np.minimum(p[:, 2], gt[1]) - np.maximum(p[:, 1], gt[0]))
            union = np.maximum(p[:, 2], gt[1]) - np.minimum(p[:, 1], gt[0])
            iou = np.divide(inter, union, out=np.zeros_like(inter), where=union != 0) * m
            rows.append((m, {t: iou >= t for t in (0.5, 0.7)}))
        res = {}
        if task == "VR":
            for k in (1, 5, 10, 100):
                res[f"r{k}"] = round(np.mean([r[0][:k].sum() >= 1 for r in rows]) * 100, 2)
        for t in (0.5, 0.7) if task != "VR" else ():
            for k in (1, 5, 10, 100):
                if task == "VCMR":
                    hit = [r[1][t][:k].sum() >= 1 for r in rows]
                else:
                    hit = [r[1][t][r[0]][:k].sum() >= 1 for r in rows]
                res[f"{t}-r{k}"] = round(np.mean(hit) * 100, 2)
        out[task] = res
    return out


@pytest.mark.parametrize("seed", range(4))
def test_equals_official_semantics_on_random_files(seed):
    rng = np.random.default_rng(seed)
    vids = [f"v{i}" for i in range(8)]
    v2i = {v: i for i, v in enumerate(vids)}
    gt, sub = [], {"video2idx": v2i, "VCMR": [], "SVMR": [], "VR": []}
    for d in range(60):
        st = float(rng.integers(0, 40)) * 1.5
        g = {
            "desc_id": d,
            "desc": "x",
            "vid_name": vids[rng.integers(0, 8)],
            "duration": 90.0,
            "ts": [st, st + float(rng.integers(1, 8)) * 1.5],
            "type": "v",
        }
        gt.append(g)
        for task in ("VCMR", "SVMR", "VR"):
            n = int(rng.integers(1, 130))
            # grid-aligned times make exact 0.5 / 0.7 ties frequent
            starts = rng.integers(0, 45, n) * 1.5
            preds = [
                [int(rng.integers(0, 8)), float(s), float(s + rng.integers(1, 10) * 1.5), 0.0] for s in starts
            ]
            sub[task].append({"desc_id": d, "desc": "x", "predictions": preds})
    ref = official_reference(sub, gt)
    ours = compute_metrics(
        parse_predictions(sub),
        [
            TVRQuery(g["desc_id"], g["desc"], g["vid_name"], g["duration"], tuple(g["ts"]), g["type"])
            for g in gt
        ],
    )
    for task in ref:
        assert ours[task] == ref[task]


def test_per_query_outcomes():
    v2i = {"a": 0, "b": 1}
    gt = [q(1, "a", 10, 20), q(2, "b", 0, 10), q(3, "a", 0, 10)]
    p = preds_of(
        v2i, {"VCMR": {1: [[1, 0, 5, 1], [0, 10, 20, 0.5]], 2: [[1, 30, 40, 1]], 3: [[1, 0, 10, 1]]}}
    )
    out = {o.desc_id: o for o in per_query_outcomes(p, gt, iou_thd=0.7, k=10)}
    assert (out[1].kind, out[1].rank_of_right_video, out[1].best_iou_rank) == ("hit", 2, 2)
    assert (out[2].kind, out[2].rank_of_right_video, out[2].best_iou) == ("right video, wrong span", 1, 0.0)
    assert (out[3].kind, out[3].rank_of_right_video) == ("wrong video", None)


def test_prediction_file_round_trip_and_validation(tmp_path):
    p = preds_of({"a": 0}, {"VCMR": {1: [[0, 1.0, 2.0, 0.5]]}})
    back = read_predictions(write_predictions(p, tmp_path / "p.json"))
    assert back.to_json() == p.to_json()
    (tmp_path / "bad.json").write_text('{"VCMR": []}')
    with pytest.raises(C2FError, match="video2idx"):
        read_predictions(tmp_path / "bad.json")


def test_annotation_bad_rows_have_line_numbers(tmp_path):
    path = tmp_path / "gt.jsonl"
    rows = [
        json.dumps({"vid_name": "a", "duration": 30, "ts": [1, 5], "desc": "ok", "desc_id": 1, "type": "v"}),
        "{not json",
        json.dumps({"vid_name": "zzz", "duration": 30, "ts": [1, 5], "desc": "x", "desc_id": 2}),
        json.dumps({"vid_name": "a", "duration": 30, "ts": [9, 5], "desc": "x", "desc_id": 3}),
        json.dumps({"vid_name": "a", "duration": 30, "ts": [1, 95], "desc": "x", "desc_id": 4}),
        json.dumps({"vid_name": "a", "duration": 30, "ts": [1, 5], "desc": "x", "desc_id": 1}),
    ]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(AnnotationError) as exc:
        load_annotations(path, known_videos={"a": 30.0})
    lines = [ln for ln, _ in exc.value.problems]
    assert lines == [2, 3, 4, 5, 6]
    assert "unknown video 'zzz'" in str(exc.value) and "line 4: ts start 9.0 is after its end 5.0" in str(
        exc.value
    )
    good, problems = load_annotations(path, known_videos={"a": 30.0}, strict=False)
    assert [g.desc_id for g in good] == [1] and len(problems) == 5
    assert load_annotations(write_annotations(good, tmp_path / "w.jsonl")) == good


def test_clip_span_convention():
    assert span_to_clips(3.0, 7.4, 1.5, 10) == (2, 4)
    assert span_to_clips(3.1, 3.2, 1.5, 10) == (2, 2)
    assert span_to_clips(0, 100, 1.5, 10) == (0, 9)
    assert clips_to_span(2, 4, 1.5, 100.0) == (3.0, 7.5)
    assert clips_to_span(9, 9, 1.5, 14.0) == (13.5, 14.0)


def brute_force_moments(st, ed, vs, alpha, lo, hi):
    out = []
    for i in range(len(st)):
        for j in range(len(ed)):
            if lo <= j - i <= hi:
                out.append((np.exp(alpha * vs) * st[i] * ed[j], i, j))
    return sorted(out, key=lambda t: -t[0])


def test_moment_scoring_and_argmax_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(5):
        st, ed = rng.dirichlet(np.ones(20)), rng.dirichlet(np.ones(20))
        i, j, s = top_moments(moment_scores(st, ed, 0.3, alpha=20, min_len=2, max_len=15), 30)
        ref = brute_force_moments(st, ed, 0.3, 20, 2, 15)[:30]
        np.testing.assert_allclose(s, [r[0] for r in ref])
        assert list(zip(i.tolist(), j.tolist(), strict=True)) == [(r[1], r[2]) for r in ref]
        best = max((st[a] * ed[b], a, b) for a in range(20) for b in range(a, 20))
        assert vslnet_argmax(st, ed) == (best[1], best[2])


def test_temporal_nms_hand_worked():
    spans = np.array([[0, 10], [1, 10], [20, 30], [0, 4]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    # [1,10] overlaps [0,10] with IoU 0.9 -> dropped; [0,4] IoU 0.4 -> kept
    assert temporal_nms(spans, scores, 0.5).tolist() == [0, 2, 3]


def test_corpus_moments_ranks_across_videos():
    st = np.array([0.7, 0.1, 0.1, 0.1])
    ed = np.array([0.1, 0.1, 0.7, 0.1])
    times = np.stack([np.arange(4) * 1.5, np.arange(4) * 1.5 + 1.5], 1)
    out = corpus_moments([(0, st, ed, 0.1, times), (1, st, ed, 0.2, times)], top_n=3)
    # video 1's best span wins (higher video score); its overlapping (0, 3) is removed by NMS
    # (IoU 0.75), so video 0's best comes second
    assert out[0][:3] == (1, 0.0, 4.5) and out[1][:3] == (0, 0.0, 4.5) and out[0][3] > out[1][3]


def test_cli_evaluate(tmp_path):
    gt = [q(1, "a", 10, 20), q(2, "a", 0, 10)]
    write_annotations(gt, tmp_path / "gt.jsonl")
    write_predictions(
        preds_of({"a": 0}, {"VCMR": {1: [[0, 10, 20, 1]], 2: [[0, 30, 40, 1]]}}), tmp_path / "p.json"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "c2f",
            "evaluate",
            "--predictions",
            str(tmp_path / "p.json"),
            "--annotations",
            str(tmp_path / "gt.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["VCMR"]["0.7-r1"] == 50.0

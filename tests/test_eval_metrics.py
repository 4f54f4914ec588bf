"""TVR metrics against hand-worked cases and a plain-loop statement of the official semantics; CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from c2f.data.tvr import TVRQuery, write_annotations
from c2f.errors import C2FError
from c2f.eval.metrics import compute_metrics, per_query_outcomes
from c2f.eval.predictions import TVRPredictions, parse_predictions, write_predictions


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
    v2i = {"a": 0, "b": 1}
    gt = [q(1, "a", 0, 10), q(2, "a", 0, 10), q(3, "a", 0, 10)]
    wrong_span = [[0, 40, 50, 1.0]] * 100
    wrong_video = [[1, 0, 10, 1.0]] * 100
    tail = [[0, 0, 10, 0.1]]  # the right moment, 101st: ignored by every task
    tasks = {t: {1: wrong_span + tail, 2: wrong_video + tail} for t in ("VCMR", "SVMR", "VR")}
    m = compute_metrics(preds_of(v2i, tasks), gt)
    assert m["VCMR"]["0.5-r100"] == 0.0
    # SVMR truncates to 100 before keeping the right video: query 2 has none left
    assert m["SVMR"]["0.5-r100"] == 0.0
    assert m["VR"]["r100"] == 33.33  # query 1's wrong spans are on the right video
    # query 2 has an empty list, query 3 is absent: both misses, the denominator stays 3
    m = compute_metrics(preds_of(v2i, {"VCMR": {1: [[0, 0, 10, 0.1]], 2: []}}), gt)
    assert m["VCMR"]["0.7-r1"] == 33.33 and set(m) == {"VCMR", "VCMR_by_type", "AveR"}


def test_order_not_scores_and_duplicates_not_collapsed():
    v2i = {"a": 0, "b": 1}
    gt = [q(1, "a", 0, 10)]
    # scores say the right moment is best, but it is listed 6th; five copies of one wrong video
    # come first and are not merged into one rank
    preds = [[1, 0, 10, 0.0]] * 5 + [[0, 0, 10, 9.0]]
    m = compute_metrics(preds_of(v2i, {"VCMR": {1: preds}, "VR": {1: preds}}), gt)
    assert m["VR"]["r5"] == 0.0 and m["VR"]["r10"] == 100.0
    assert m["VCMR"]["0.7-r5"] == 0.0 and m["VCMR"]["0.7-r10"] == 100.0
    # the same right moment repeated still counts once
    m = compute_metrics(preds_of(v2i, {"VCMR": {1: [[0, 0, 10, 1]] * 3}}), gt)
    assert m["VCMR"]["0.7-r1"] == 100.0


def test_iou_ties_and_official_union():
    v2i = {"a": 0}
    gt = [q(1, "a", 0.0, 3.0), q(2, "a", 0.0, 3.0), q(3, "a", 4.5, 9.0)]
    preds = {
        1: [[0, 0.0, 1.5, 1]],  # IoU 1.5 / 3 = 0.5 exactly: counts at 0.5
        2: [[0, 0.9, 3.0, 1]],  # IoU 2.1 / 3 = 0.7: counts at 0.7
        3: [[0, 0.0, 1.5, 1]],  # disjoint: 0, not negative
    }
    m = compute_metrics(preds_of(v2i, {"VCMR": preds}), gt)
    assert m["VCMR"]["0.5-r1"] == 66.67 and m["VCMR"]["0.7-r1"] == 33.33


def test_by_type_only_when_every_query_has_a_type_and_aver():
    v2i = {"a": 0}
    gt = [q(1, "a", 0, 10, t=None), q(2, "a", 0, 10, t="v")]
    p = preds_of(v2i, {"VCMR": {1: [[0, 0, 10, 1]], 2: [[0, 20, 30, 1], [0, 0, 10, 1]]}})
    m = compute_metrics(p, gt)
    assert "VCMR_by_type" not in m
    # VCMR 0.7: r1 = 50, r5 = r10 = 100 -> AveR 83.33
    assert m["AveR"] == {"VCMR": 83.33}
    gt = [q(1, "a", 0, 10, t="vt"), q(2, "a", 0, 10, t="vt")]
    by_type = compute_metrics(p, gt)["VCMR_by_type"]
    assert by_type["vt-0.7-r1"] == 50.0 and by_type["v-0.7-r1"] is None
    assert by_type["desc_type_ratio"] == "v 0.0 t 0.0 vt 100.0"


def test_predictions_for_unknown_queries_are_ignored_and_bad_numbers_rejected():
    gt = [q(1, "a", 0, 10)]
    m = compute_metrics(preds_of({"a": 0}, {"VR": {1: [[0, 0, 0, 1]], 99: [[0, 0, 0, 1]]}}), gt)
    assert m["VR"]["r1"] == 100.0
    with pytest.raises(C2FError, match=r"\[video_idx, st, ed, score\]"):
        compute_metrics(preds_of({"a": 0}, {"VR": {1: [[0, "start", None, 1]]}}), gt)
    with pytest.raises(C2FError, match="desc_id twice"):
        compute_metrics(preds_of({"a": 0}, {"VR": {}}), gt + gt)


@pytest.mark.slow
def test_100k_queries_by_100_predictions_equal_a_direct_count():
    # Scale (the vectorised matrices) checked for exactness, not for speed: speed belongs to benchmarks.
    rng = np.random.default_rng(0)
    n_q, n_v = 100_000, 1000
    v2i = {f"v{i}": i for i in range(n_v)}
    gt_vid = rng.integers(0, n_v, n_q)
    starts = rng.integers(0, 80, n_q)
    gt = [
        TVRQuery(d, "x", f"v{v}", 90.0, (float(s), float(s) + 6), "v")
        for d, (v, s) in enumerate(zip(gt_vid, starts, strict=True))
    ]
    # 1000 distinct prediction lists shared by the queries: cheap to build, same work to score
    vid = rng.integers(0, n_v, (1000, 100))
    st = rng.integers(0, 80, (1000, 100)).astype(float)
    table = np.stack([vid, st, st + 6, st], 2).tolist()  # (1000, 100, 4)
    entries = [{"desc_id": d, "desc": "", "predictions": table[d % 1000]} for d in range(n_q)]
    m = compute_metrics(TVRPredictions(v2i, {"VCMR": entries, "SVMR": entries}), gt)
    # Direct count: equal 6 s spans overlap by IoU (6 - |ds|) / (6 + |ds|) >= 0.7 iff |ds| <= 1.
    rows = np.arange(n_q) % 1000
    hit = (np.abs(st[rows] - starts[:, None]) <= 1)  # (n_q, 100) IoU >= 0.7 by time alone
    right = vid[rows] == gt_vid[:, None]  # (n_q, 100) prediction on the query's video
    vcmr_hit = hit & right
    nth_right = np.cumsum(right, 1)  # SVMR ranks only the predictions on the right video
    for k in (1, 5, 10, 100):
        assert m["VCMR"][f"0.7-r{k}"] == pytest.approx(100 * vcmr_hit[:, :k].any(1).mean(), abs=0.01)
        assert m["SVMR"][f"0.7-r{k}"] == pytest.approx(100 * (vcmr_hit & (nth_right <= k)).any(1).mean(), abs=0.01)


def official_reference(submission: dict, ground_truth: list[dict]) -> dict:
    """The official semantics in plain loops over float32 scalars: first 100 predictions, IoU over
    max(ed) - min(st), SVMR filtered to the right video before taking K, absent queries missed,
    per-type subsets, round(100 * mean, 2)."""
    f32 = np.float32
    v2i = submission["video2idx"]
    out = {}
    for task in ("VCMR", "SVMR", "VR"):
        by_id = {e["desc_id"]: e["predictions"] for e in submission[task]}
        per_query = []  # (type, [(on right video, iou), ...] of the first 100)
        for g in ground_truth:
            rows = []
            for p in by_id.get(g["desc_id"], [])[:100]:
                right = f32(p[0]) == f32(v2i[g["vid_name"]])
                pst, ped, gst, ged = f32(p[1]), f32(p[2]), f32(g["ts"][0]), f32(g["ts"][1])
                inter = max(f32(0), min(ped, ged) - max(pst, gst))
                union = max(ped, ged) - min(pst, gst)
                iou = inter / union if union != 0 else f32(0)
                rows.append((right, iou if right else f32(0)))
            per_query.append((g["type"], rows))

        def hit(rows, k, t, task=task):
            if task == "VR":
                return any(right for right, _ in rows[:k])
            if task == "SVMR":
                rows = [r for r in rows if r[0]]
            return any(iou >= f32(t) for _, iou in rows[:k])

        def rate(hits):
            return round(float(np.mean(hits)) * 100, 2)

        res, by_type = {}, {}
        for t in (None,) if task == "VR" else (0.5, 0.7):
            for k in (1, 5, 10, 100):
                key = f"r{k}" if t is None else f"{t}-r{k}"
                res[key] = rate([hit(rows, k, t) for _, rows in per_query])
                for qt in ("v", "t", "vt"):
                    sub = [hit(rows, k, t) for typ, rows in per_query if typ == qt]
                    by_type[f"{qt}-{key}"] = rate(sub) if sub else None
        out[task], out[f"{task}_by_type"] = res, by_type
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
            "type": ["v", "t", "vt"][rng.integers(0, 3)],
        }
        gt.append(g)
        for task in ("VCMR", "SVMR", "VR"):
            if rng.random() < 0.05:
                continue  # a query the submission leaves out
            n = int(rng.integers(0, 130))
            # grid-aligned times make exact 0.5 / 0.7 ties frequent
            starts = rng.integers(0, 45, n) * 1.5
            preds = [
                [int(rng.integers(0, 8)), float(s), float(s + rng.integers(0, 10) * 1.5), 0.0] for s in starts
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
    for key, value in ref.items():
        assert {k: v for k, v in ours[key].items() if k != "desc_type_ratio"} == value


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


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "c2f", "evaluate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_writes_metrics_file_and_reports_bad_input(tmp_path):
    gt = [q(1, "a", 10, 20, t="t")]
    write_annotations(gt, tmp_path / "gt.jsonl")
    write_predictions(preds_of({"a": 0}, {"SVMR": {1: [[0, 10, 20, 1]]}}), tmp_path / "p.json")
    proc = run_cli(
        "--predictions",
        tmp_path / "p.json",
        "--annotations",
        tmp_path / "gt.jsonl",
        "--out",
        tmp_path / "m.json",
    )
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved == json.loads(proc.stdout) and saved["SVMR"]["0.7-r1"] == 100.0
    assert saved["SVMR_by_type"]["t-0.7-r1"] == 100.0 and saved["AveR"] == {"SVMR": 100.0}

    (tmp_path / "bad.jsonl").write_text('{"vid_name": "a"}\n')
    proc = run_cli("--predictions", tmp_path / "p.json", "--annotations", tmp_path / "bad.jsonl")
    assert proc.returncode == 2 and "line 1: missing key(s)" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("--annotations", tmp_path / "gt.jsonl")
    assert proc.returncode == 2 and "--predictions" in proc.stderr


def test_per_query_outcomes_respect_k_and_name_a_missing_task():
    v2i = {"a": 0, "b": 1}
    gt = [q(1, "a", 0, 10), q(2, "a", 0, 10)]
    far = [[1, 0, 10, 1]] * 10 + [[0, 0, 10, 1]]  # right video and span at rank 11
    near = [[1, 0, 10, 1], [0, 0, 4, 1], [0, 0, 6, 1]]  # IoU 0.4 at rank 2, 0.6 at rank 3
    p = preds_of(v2i, {"VCMR": {1: far, 2: near}})
    out = per_query_outcomes(p, gt, iou_thd=0.5, k=10)
    assert (out[0].kind, out[0].rank_of_right_video, out[0].best_iou_rank) == ("wrong video", 11, None)
    assert (out[1].kind, out[1].rank_of_right_video, out[1].best_iou_rank) == ("hit", 2, 3)
    assert out[1].best_iou == pytest.approx(0.6)
    out = per_query_outcomes(p, gt, iou_thd=0.5, k=2)
    assert (out[1].kind, out[1].best_iou_rank) == ("right video, wrong span", 2)
    assert per_query_outcomes(p, gt, iou_thd=0.5, k=11)[0].kind == "hit"
    with pytest.raises(C2FError, match="no SVMR"):
        per_query_outcomes(p, gt, task="SVMR")

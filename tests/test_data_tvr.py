"""TVR annotation files: bad rows reported with line numbers, round trips, the clip-span convention."""

from __future__ import annotations

import json

import numpy as np
import pytest

from c2f.data.tvr import TVRQuery, clips_to_span, load_annotations, span_to_clips, write_annotations
from c2f.errors import AnnotationError


def row(**kw):
    base = {"vid_name": "a", "duration": 30, "ts": [1, 5], "desc": "a man waves", "desc_id": 1, "type": "v"}
    base.update(kw)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


def test_bad_rows_are_reported_together_with_line_numbers(tmp_path):
    path = tmp_path / "gt.jsonl"
    rows = [
        row(),
        "{not json",
        row(vid_name="zzz", desc_id=2),
        row(ts=[9, 5], desc_id=3),
        row(ts=[1, 95], desc_id=4),
        row(),  # desc_id 1 again
        "",  # blank lines are skipped, not errors
        row(ts=[-1, 5], desc_id=5),
        row(desc_id=...),
        row(desc_id=6, type="x"),
        row(desc_id=7, ts=[1, "5"]),
        row(desc_id=8, duration=-3),
        row(desc_id=[1]),
        row(desc_id=9, desc="  "),
        "[1, 2]",
    ]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(AnnotationError) as exc:
        load_annotations(path, known_videos={"a": 30.0})
    assert [ln for ln, _ in exc.value.problems] == [2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15]
    text = str(exc.value)
    assert "line 3: unknown video 'zzz'" in text
    assert "line 4: ts start 9.0 is after its end 5.0" in text
    assert "line 6: desc_id 1 already used on line 1" in text
    assert "line 9: missing key(s) ['desc_id']" in text
    good, problems = load_annotations(path, known_videos={"a": 30.0}, strict=False)
    assert [g.desc_id for g in good] == [1] and len(problems) == 13


def test_valid_rows_and_round_trip(tmp_path):
    path = tmp_path / "gt.jsonl"
    path.write_text(
        "\n".join(
            [
                row(),
                row(desc_id="q-2", ts=[0, 30.9], type=...),  # up to a clip past the end is allowed
                row(desc_id=3, duration=..., vid_name="b", type="vt"),  # duration from known_videos
            ]
        )
    )
    got = load_annotations(path, known_videos={"a": 30.0, "b": 12.0})
    assert got == [
        TVRQuery(1, "a man waves", "a", 30.0, (1.0, 5.0), "v"),
        TVRQuery("q-2", "a man waves", "a", 30.0, (0.0, 30.9), None),
        TVRQuery(3, "a man waves", "b", 12.0, (1.0, 5.0), "vt"),
    ]
    assert load_annotations(write_annotations(got, tmp_path / "w.jsonl")) == got


def test_known_duration_bounds_ts(tmp_path):
    path = tmp_path / "gt.jsonl"
    path.write_text(row(ts=[1, 20], duration=30))
    with pytest.raises(AnnotationError, match=r"beyond the video.s duration 10\.0"):
        load_annotations(path, known_videos={"a": 10.0})


def test_missing_duration_without_known_videos(tmp_path):
    path = tmp_path / "gt.jsonl"
    path.write_text(row(duration=...))
    with pytest.raises(AnnotationError, match="line 1: no duration"):
        load_annotations(path)


def test_empty_or_unreadable_file(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(AnnotationError, match="no annotation rows"):
        load_annotations(tmp_path / "empty.jsonl")
    with pytest.raises(AnnotationError, match="cannot read"):
        load_annotations(tmp_path / "missing.jsonl")


def test_clip_span_convention_hand_worked():
    assert span_to_clips(3.0, 7.4, 1.5, 10) == (2, 4)
    assert span_to_clips(3.0, 7.5, 1.5, 10) == (2, 4)  # an end on a clip boundary closes that clip
    assert span_to_clips(3.1, 3.2, 1.5, 10) == (2, 2)
    assert span_to_clips(3.0, 3.0, 1.5, 10) == (2, 2)  # empty span: one clip
    assert span_to_clips(0, 100, 1.5, 10) == (0, 9)  # clamped
    assert clips_to_span(2, 4, 1.5, 100.0) == (3.0, 7.5)
    assert clips_to_span(9, 9, 1.5, 14.0) == (13.5, 14.0)


def test_clip_span_round_trip_and_cover():
    rng = np.random.default_rng(0)
    cs, n = 1.5, 40
    duration = n * cs - 0.7
    for _ in range(300):
        i = int(rng.integers(0, n))
        j = int(rng.integers(i, n))
        st, ed = clips_to_span(i, j, cs, duration)
        assert span_to_clips(st, ed, cs, n) == (i, j)
        # any span in seconds lies inside the seconds of its clips
        a, b = sorted(rng.uniform(0, duration, 2))
        ci, cj = span_to_clips(a, b, cs, n)
        lo, hi = clips_to_span(ci, cj, cs, duration)
        assert lo <= a and b <= hi + 1e-9 and ci <= cj

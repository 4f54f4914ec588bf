"""TVR prediction files: round trip and clear errors for malformed ones."""

from __future__ import annotations

import json

import pytest

from c2f.errors import C2FError
from c2f.eval.predictions import TVRPredictions, read_predictions, write_predictions


def test_round_trip(tmp_path):
    p = TVRPredictions(
        {"a": 0, "b": 1},
        {
            "VCMR": [{"desc_id": 1, "desc": "x", "predictions": [[0, 1.0, 2.5, 0.5], [1, 0.0, 1.5, 0.25]]}],
            "VR": [{"desc_id": "q2", "desc": "y", "predictions": []}],
        },
    )
    back = read_predictions(write_predictions(p, tmp_path / "p.json"))
    assert back == p
    assert set(json.loads((tmp_path / "p.json").read_text())) == {"video2idx", "VCMR", "VR"}


def entry(**kw):
    return {"desc_id": 1, "desc": "x", "predictions": [[0, 1.0, 2.0, 0.5]], **kw}


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "video2idx"),
        ({"VCMR": []}, "video2idx"),
        ({"video2idx": {"a": "0"}, "VCMR": []}, "'a' is not"),
        ({"video2idx": {"a": 0}}, "no task"),
        ({"video2idx": {"a": 0}, "VCMR": {}}, "VCMR must be a list"),
        ({"video2idx": {"a": 0}, "SVMR": [{"desc": "x"}]}, r"SVMR\[0\] needs 'desc_id'"),
        ({"video2idx": {"a": 0}, "VR": [entry(predictions=[[0, 1.0]])]}, r"\[video_idx, st, ed, score\]"),
        ({"video2idx": {"a": 0}, "VR": [entry(predictions=[[0, 1, 2, 0], 5])]}, "desc_id 1"),
        ({"video2idx": {"a": 0}, "VCMR": [entry(), entry()]}, "desc_id 1 twice"),
        ({"video2idx": {"a": 0}, "VCMR": [entry(desc_id=[1])]}, "integer or a string"),
    ],
)
def test_malformed_files_name_the_problem(tmp_path, data, message):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    with pytest.raises(C2FError, match=message):
        read_predictions(path)


def test_unreadable_file(tmp_path):
    (tmp_path / "p.json").write_text('{"video2idx": ')
    with pytest.raises(C2FError, match="not a readable prediction file"):
        read_predictions(tmp_path / "p.json")
    with pytest.raises(C2FError, match="not a readable prediction file"):
        read_predictions(tmp_path / "missing.json")

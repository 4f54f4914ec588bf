"""The demo end to end through gradio_client (tiny mode): index, search, bad input, error analysis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from app_server import running_app
from gradio_client import Client, handle_file
from videogen import make_text_file_as_video, make_video, write_srt


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    with running_app(root / "library") as url:
        yield url, root


def rows(table):
    return table["data"] if isinstance(table, dict) else table


def test_upload_index_search_and_bad_input(app, tmp_path):
    url, _ = app
    client = Client(url, verbose=False)
    video = make_video(tmp_path / "colours.mp4", segments=[("red", 3), ("blue", 3)])
    srt = write_srt(tmp_path / "colours.srt", [(0.5, 2.5, "a red wall"), (3.5, 5.5, "a blue sky")])
    status, table, _ = client.predict(
        [handle_file(str(video)), handle_file(str(srt))], "tiny", api_name="/index"
    )
    assert status.startswith("1 video(s) added")
    listed = {r[1]: r for r in rows(table)}
    assert listed["colours.mp4"][4] == "indexed" and listed["colours.mp4"][5] == "yes"

    # a text file renamed .mp4: a clear message, and the library keeps what it had
    bad = make_text_file_as_video(tmp_path / "notes.mp4")
    status, table, _ = client.predict([handle_file(str(bad))], "tiny", api_name="/index")
    assert "1 failed" in status
    assert "colours.mp4" in {r[1] for r in rows(table)} and "notes.mp4" not in {r[1] for r in rows(table)}

    moments, _plot, player, gallery, _status, raw, *_ = client.predict(
        "a red wall", 3, 2, "tiny", api_name="/search"
    )
    assert rows(moments) and rows(moments)[0][1] == "colours.mp4"
    raw = json.loads(raw) if isinstance(raw, str) else raw
    assert player and gallery and raw["videos"][0]["name"] == "colours.mp4", raw
    assert len(raw["videos"][0]["importance"]) == 4

    with pytest.raises(Exception, match="the query is empty"):
        client.predict("   ", 3, 2, "tiny", api_name="/search")


def test_error_analysis_on_the_examples(app):
    url, _ = app
    client = Client(url, verbose=False)
    client.predict("tiny", api_name="/add_examples")
    from c2f.ui.examples import example_annotations

    metrics, outcomes, export, *_ = client.predict(
        handle_file(str(example_annotations())), 10, "tiny", api_name="/evaluate"
    )
    names = {(r[0], r[1]) for r in rows(metrics)}
    assert ("VCMR", "0.7-r1") in names and ("VR", "r10") in names and ("SVMR", "AveR") in names
    assert len(rows(outcomes)) == 4
    assert {r[5] for r in rows(outcomes)} <= {"hit", "right video, wrong span", "wrong video"}
    preds = json.loads(Path(export).read_text())
    assert set(preds) == {"video2idx", "VCMR", "SVMR", "VR"} and len(preds["VCMR"]) == 4

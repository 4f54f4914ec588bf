"""The demo end to end through gradio_client on a local single-user run (tiny mode): index, search,
bad input alone refused, remove by id, error analysis on the bundled examples at every top-k."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest
from app_server import running_app
from gradio_client import Client, handle_file
from videogen import make_text_file_as_video, make_video, write_srt

from c2f.ui.config import AppConfig
from c2f.video.tools import ffmpeg_exe


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    with running_app(root / "library") as url:
        yield url, root


def rows(table):
    return table["data"] if isinstance(table, dict) else table


def test_named_endpoints_are_exactly_the_documented_ones(app):
    url, _ = app
    api = Client(url, verbose=False).view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {"/index", "/add_examples", "/remove", "/search", "/export", "/evaluate"}
    assert not api["unnamed_endpoints"]
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in api["named_endpoints"]:
        assert f"`{name}`" in readme, name


def test_upload_index_search_remove_and_bad_input(app, tmp_path):
    url, _ = app
    client = Client(url, verbose=False, download_files=False)
    video = make_video(tmp_path / "colours.mp4", segments=[("red", 3), ("blue", 3)])
    srt = write_srt(tmp_path / "colours.srt", [(0.5, 2.5, "a red wall"), (3.5, 5.5, "a blue sky")])
    # an MPEG-TS file (C2F decodes it), a text file renamed .mp4 and a non-video: the bad ones are
    # refused alone and the good ones of the batch are indexed
    ts = tmp_path / "stream.ts"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(make_video(tmp_path / "s.mp4")), "-c", "copy", str(ts)],
        check=True,
    )
    bad = make_text_file_as_video(tmp_path / "notes.mp4")
    other = tmp_path / "notes.xyz"
    other.write_text("not a video")
    status, table, _ = client.predict(
        [handle_file(str(p)) for p in (video, srt, ts, bad, other)], "tiny", api_name="/index"
    )
    assert status.startswith("2 video(s) added") and "2 failed" in status, status
    listed = {r[1]: r for r in rows(table)}
    assert set(listed) == {"colours.mp4", "stream.ts"}
    # the uploads, handled, are gone from Gradio's cache (the library keeps its own copies)
    _, root = app
    cache = AppConfig(library_root=root / "library").gradio_cache
    # (Gradio's upload route leaves an empty temporary file per upload: emptied at start-up)
    assert cache.is_dir() and not [p.name for p in cache.rglob("*") if p.is_file() and p.stat().st_size]
    assert listed["colours.mp4"][4] == "indexed" and listed["colours.mp4"][5] == "yes"

    html, raw = client.predict("a red wall", 3, 2, "tiny", api_name="/search")
    raw = json.loads(raw) if isinstance(raw, str) else raw
    assert raw["moments"] and {m["name"] for m in raw["moments"]} <= {"colours.mp4", "stream.ts"}
    by_name = {v["name"]: v for v in raw["videos"]}
    assert len(by_name["colours.mp4"]["importance"]) == 4
    assert "video_file" not in by_name["colours.mp4"], "a server path reached the visitor"
    # one HTML block: the status, a player on the top moment's video opened at its start, a thumbnail
    # per top video and a row per moment; one curve point per clip
    top = raw["moments"][0]
    assert f'#t={top["start"]:.3f}"' in html and html.count("<video ") == 1
    assert html.count(".jpg") == 2 and html.count("<tr data-src=") == len(raw["moments"])
    assert "moment(s) in" in html and "video_file" not in html
    # media by opaque names only (no server path in the page or the JSON), played with Range requests
    for text in (html, json.dumps(raw)):
        assert str(root) not in text and "/tmp" not in text and str(Path.home()) not in text
    src = re.search(r'<video [^>]*src="(c2f-media/local/[A-Za-z0-9_-]+/[A-Za-z0-9_-]+\.mp4)#', html).group(1)
    request = urllib.request.Request(f"{url}/{src}", headers={"Range": "bytes=10-49"})
    with urllib.request.urlopen(request, timeout=10) as r:
        on_disk = (root / "library" / "media").joinpath(*src.split("/")[1:])
        assert r.status == 206 and r.read() == on_disk.read_bytes()[10:50]
    # one panel of curves per top video, a band per moment
    assert html.count('<figure class="c2f-curve"') == len(raw["videos"])
    assert html.count('<g class="c2f-span"') == len(raw["moments"])

    with pytest.raises(Exception, match="the query is empty"):
        client.predict("   ", 3, 2, "tiny", api_name="/search")

    # /export: the raw result's moments (ranks 2 and 1 here; "" for all) as a file
    exported = Path(Client(url, verbose=False).predict(raw, "2 1", "JSON", False, "tiny", api_name="/export"))
    taken = json.loads(exported.read_text())
    assert exported.name == "moments.json" and taken["title"] == "C2F a red wall"
    assert [(m["video_id"], m["start"], m["end"]) for m in taken["moments"]] == [
        (m["video_id"], m["start"], m["end"]) for m in (raw["moments"][1], raw["moments"][0])
    ]

    # /remove takes a video id directly, without the dropdown being filled first
    status, table, _ = Client(url, verbose=False).predict(listed["stream.ts"][0], "tiny", api_name="/remove")
    assert status == "removed stream.ts" and {r[1] for r in rows(table)} == {"colours.mp4"}


@pytest.mark.parametrize("top_k", [1, 3, 10])
def test_error_analysis_on_the_examples_at_every_top_k(app, top_k):
    url, _ = app
    client = Client(url, verbose=False)
    client.predict("tiny", api_name="/add_examples")
    from c2f.ui.examples import example_annotations

    metrics, outcomes, export, *_ = client.predict(
        handle_file(str(example_annotations())), top_k, "tiny", api_name="/evaluate"
    )
    names = {(r[0], r[1]) for r in rows(metrics)}
    assert ("VCMR", "0.7-r1") in names and ("VR", "r10") in names and ("SVMR", "AveR") in names
    assert len(rows(outcomes)) == 8
    assert {r[5] for r in rows(outcomes)} <= {"hit", "right video, wrong span", "wrong video"}
    preds = json.loads(Path(export).read_text())
    assert set(preds) == {"video2idx", "VCMR", "SVMR", "VR"} and len(preds["VCMR"]) == 8
    # the official protocol (since f56e2e6): up to 100 videos ranked per query whatever top-k asks,
    # each a video of the file's index, once
    for p in preds["VR"]:
        ranked = [v[0] for v in p["predictions"]]
        assert ranked and len(ranked) == len(set(ranked)) and set(ranked) <= set(preds["video2idx"].values()), p

"""The demo's "more like this", picture search and exports without a browser (tiny mode, public
deployment): an export makes its visitor one, lives in their export folder, counts in their disk
quota and goes with them; clips are bounded and take a job slot; "more like this" finds the
collection its row came from."""

from __future__ import annotations

import csv
import io
import time
import zipfile

import pytest
from videogen import make_image, make_video

from c2f.errors import C2FError
from c2f.search import MomentRef, Query
from c2f.ui.config import AppConfig
from c2f.ui.jobs import BusyError
from c2f.ui.media import folder_bytes
from c2f.ui.service import AppService

PATTERN = [("red", 1.5), ("yellow", 1.5)]


def cfg(root, **kw) -> AppConfig:
    return AppConfig(library_root=root, mode="tiny", multi_user=True, secret="s", **kw)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("ui-export-videos")
    return [
        make_video(d / "a.mp4", fps=25, segments=[("black", 3.0), *PATTERN, ("black", 1.5)]),
        make_video(d / "b.mp4", fps=30, segments=[("blue", 1.5), *PATTERN]),
    ]


def moments_of(result) -> list[dict]:
    return [
        {"video_id": m.video_id, "name": m.name, "start": m.start, "end": m.end, "score": m.score}
        for m in result.moments
    ]


def test_exports_count_in_the_quota_and_go_with_their_visitor(tmp_path, videos):
    service = AppService(cfg(tmp_path / "root", visitor_max_disk_mb=50, idle_minutes=0.5 / 60, sweep_seconds=0.2))
    alice = service.visitor(None, "alice")
    assert len(service.index("tiny", videos, who=alice).added) == 2
    result, _ = service.search("tiny", "a red car", 2, 2, alice)
    before = service.usage("tiny", alice).bytes
    path = service.export_moments("tiny", moments_of(result), "csv", who=alice, title="C2F a red car")
    assert path.parent == service.exports.folder(alice) and path.name == "moments.csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [(r["video_id"], float(r["start"]), float(r["end"])) for r in rows] == [
        (m.video_id, m.start, m.end) for m in result.moments
    ]
    assert service.usage("tiny", alice).bytes == before + path.stat().st_size  # counted in her quota
    # two frame rates: one EDL each, in one download
    edl = service.export_moments("tiny", moments_of(result), "edl", who=alice)
    with zipfile.ZipFile(edl) as zf:
        assert edl.name == "moments-edl.zip" and sorted(zf.namelist()) == ["moments-25fps.edl", "moments-30fps.edl"]
    # a second export of a format replaces the first; no staging folder is left behind
    again = service.export_moments("tiny", moments_of(result)[:1], "csv", who=alice)
    assert again == path and len(path.read_text().splitlines()) == 2
    assert sorted(p.name for p in service.exports.folder(alice).iterdir()) == ["moments-edl.zip", "moments.csv"]
    # the idle sweep removes her exports with her videos
    folders = service.visitor_folders(alice)
    service.sweeper.start()
    deadline = time.time() + 20
    while any(f.exists() for f in folders) and time.time() < deadline:
        time.sleep(0.1)
    service.sweeper.stop()
    assert not any(f.exists() for f in folders)


def test_an_export_past_the_quota_is_refused_and_leaves_nothing(tmp_path, videos):
    service = AppService(cfg(tmp_path / "root"))
    bob = service.visitor(None, "bob")
    service.index("tiny", videos[:1], who=bob)
    result, _ = service.search("tiny", "a red car", 2, 3, bob)
    used = service.usage("tiny", bob).bytes
    service.config.visitor_max_disk_mb = (used + 100) / (1024 * 1024)  # 100 bytes of room left
    with pytest.raises(C2FError, match="does not fit in your disk quota"):
        service.export_moments("tiny", moments_of(result), "json", who=bob)
    assert not any(service.exports.folder(bob).iterdir())  # neither the file nor its staging folder
    service.config.visitor_max_disk_mb = 50
    assert service.export_moments("tiny", moments_of(result), "json", who=bob).is_file()


def test_clips_are_bounded_and_take_a_job_slot(tmp_path, videos):
    service = AppService(cfg(tmp_path / "root", export_max_seconds=2.0))
    carol = service.visitor(None, "carol")
    service.index("tiny", videos, who=carol)
    result, _ = service.search("tiny", "a red car", 2, 3, carol)
    long = [m for m in moments_of(result)] * 3
    with pytest.raises(C2FError, match=r"at most 2 s per export, tick fewer moments"):
        service.export_moments("tiny", long, "clips", who=carol)
    one = [dict(moments_of(result)[0], end=moments_of(result)[0]["start"] + 1.5)]
    with service.jobs.slot(carol, "indexing"), pytest.raises(BusyError, match="already have a job"):
        service.export_moments("tiny", one, "clips", who=carol)
    path = service.export_moments("tiny", one, "clips", exact=True, who=carol)
    with zipfile.ZipFile(path) as zf:
        assert path.name == "moments.zip" and len(zf.namelist()) == 2
    with pytest.raises(C2FError, match="no moment to export"):
        service.export_moments("tiny", [], "csv", who=carol)
    with pytest.raises(C2FError, match="unknown export format"):
        service.export_moments("tiny", one, "xml", who=carol)
    folder_before = folder_bytes(service.exports.folder(carol))
    with pytest.raises(C2FError, match="no video 'nope'"):
        service.export_moments("tiny", [dict(one[0], video_id="nope")], "csv", who=carol)
    assert folder_bytes(service.exports.folder(carol)) == folder_before


def test_more_like_this_and_a_picture_in_the_demo(tmp_path, videos):
    service = AppService(cfg(tmp_path / "root"))
    dave = service.visitor(None, "dave")
    service.index("tiny", videos, who=dave)
    ids = {r[1]: r[0] for r in service.table("tiny", dave)}
    like = Query(like=MomentRef(ids["a.mp4"], 3.0, 6.0))
    result, _ = service.search("tiny", like, 2, 2, dave, match="speech")  # examples match the visual
    found = {(m.name, m.start, m.end) for m in result.moments}
    assert ("b.mp4", 1.5, 4.5) in found and not any(n == "a.mp4" and s < 6 and e > 3 for n, s, e in found)
    picture = make_image(tmp_path / "red.png", size=(96, 64))
    shown, _ = service.search("tiny", Query(image=str(picture)), 2, 2, dave)
    assert shown.query == "picture red.png" and {(m.name, m.start) for m in shown.moments[:2]} == {
        ("a.mp4", 3.0),
        ("b.mp4", 1.5),
    }
    # a row of a video that is not in the searched collection: the error names the video
    with pytest.raises(C2FError, match="no video 'nope'"):
        service.search("tiny", Query(like=MomentRef("nope", 0, 1)), 2, 2, dave)

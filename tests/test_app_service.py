"""The demo's service without a browser (tiny mode): visitor ids that cannot be forged, idle
visitors removed, files written once under unique names, a failed backend remembered without
holding up other modes, quotas, bounded disk over a long session, analysis keyed by video id."""

from __future__ import annotations

import json
import threading

import pytest
from videogen import make_video

from c2f.analysis import evaluate_library
from c2f.errors import C2FError
from c2f.ui.media import folder_bytes, playable_copy, thumbnail
from c2f.ui.service import SHOWCASE, AppConfig, AppService
from c2f.ui.text import public_text
from c2f.ui.visitors import IdleSweeper, VisitorKeys


def test_visitor_tokens_cannot_be_forged():
    keys = VisitorKeys("server secret")
    token = keys.new_token()
    vid = keys.verify(token)
    assert vid and len(vid) == 32 and token.startswith(vid)
    other = keys.new_token()
    assert keys.verify(other) not in (None, vid)
    forged = f"{vid[:-1]}{'0' if vid[-1] != '0' else '1'}.{token.split('.')[1]}"
    assert keys.verify(forged) is None  # an id changed by hand
    assert VisitorKeys("another secret").verify(token) is None  # signed by another server
    assert all(keys.verify(t) is None for t in (None, "", 3, "a.b.c", vid))
    assert keys.media_name(vid) != vid and keys.from_session("s1") != keys.from_session("s2")


def test_idle_visitors_are_removed(tmp_path):
    folders = {v: [tmp_path / v / "lib", tmp_path / v / "media"] for v in ("idle", "active")}
    for fs in folders.values():
        for f in fs:
            f.mkdir(parents=True)
            (f / "x.bin").write_bytes(b"1234")
    sweeper = IdleSweeper(idle_seconds=60, every_seconds=0)
    sweeper.seen("active")
    now = max(f.stat().st_mtime for f in folders["idle"]) + 61  # "idle" last wrote 61 s ago
    sweeper.seen("active")
    assert sweeper.sweep(folders, now=now - 1) == []  # not yet idle long enough
    sweeper._last_seen["active"] = now - 10
    assert sweeper.sweep(folders, now=now + 1) == ["idle"]
    assert not any(f.exists() for f in folders["idle"]) and all(f.exists() for f in folders["active"])


def test_no_server_path_in_visitor_text():
    assert public_text("cannot read /srv/c2f/visitors/ab12/x.mp4: bad") == "cannot read x.mp4: bad"
    assert public_text("3 video(s) added") == "3 video(s) added"


def test_media_made_at_once_by_many_threads(tmp_path):
    video = make_video(tmp_path / "v.mkv", seconds=2.0)  # not a browser container: converted once
    out = tmp_path / "media"
    errors, results = [], []

    def make() -> None:
        try:
            results.append((playable_copy(video, out, "vid"), thumbnail(video, 1.0, out / "vid.jpg")))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=make) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    assert sorted(p.name for p in out.iterdir()) == ["vid.jpg", "vid.mp4"]  # no temporary left
    assert (out / "vid.jpg").read_bytes()[:2] == b"\xff\xd8"


@pytest.fixture
def public(tmp_path):
    config = AppConfig(
        library_root=tmp_path / "root", mode="tiny", multi_user=True, secret="s", visitor_max_videos=2
    )
    return AppService(config)


def test_failed_backend_is_remembered_and_never_blocks_another_mode(public):
    with pytest.raises(C2FError) as first:
        public.backend("zero-shot")  # no weights in the tests (offline)
    with pytest.raises(C2FError) as again:
        public.backend("zero-shot")
    assert again.value is first.value  # remembered, not loaded again
    with public._mode_locks["zero-shot"]:  # a load in progress in another thread...
        assert public.backend("tiny").is_tiny  # ...does not hold up another mode
    with pytest.raises(C2FError, match="unknown mode"):
        public.backend("learned:../../etc")


def test_quotas_and_a_long_session_leave_the_disk_where_it_started(public, tmp_path):
    alice = public.visitor(None, "session-alice")
    videos = [
        make_video(tmp_path / f"v{i}.mp4", segments=[(c, 2)]) for i, c in enumerate(["red", "blue", "green"])
    ]
    out = public.index("tiny", videos, who=alice)
    assert len(out.added) == 2 and out.failed == [
        ("v2.mp4", "over the quota of videos in your library: remove one first")
    ]
    coll = public.collection("tiny", alice)
    sizes = []
    for _ in range(3):  # a long session: remove and add back, again and again
        for row in public.table("tiny", alice):
            public.remove("tiny", row[0], alice)
        assert folder_bytes(coll.media) == 0
        sizes.append(folder_bytes(public.config.library_root / "visitors"))
        assert len(public.index("tiny", videos[:2], who=alice).added) == 2
    assert sizes[0] == sizes[1] == sizes[2]
    with pytest.raises(C2FError, match="read-only"):
        public.remove("tiny", "any id", SHOWCASE)
    # idle: everything of Alice goes, the showcase stays
    public.sweeper = IdleSweeper(idle_seconds=0, every_seconds=0)
    assert public.sweep_idle() == [alice]
    assert not (public.config.library_root / "visitors" / alice).exists() and not coll.media.exists()


def test_analysis_keys_videos_by_id(tmp_path):
    """Two uploads named v2.mp4 with different content are two videos; an annotation naming v2 is
    ambiguous and skipped, the others are scored."""
    service = AppService(AppConfig(library_root=tmp_path / "root", mode="tiny"))
    a = make_video(tmp_path / "a" / "v2.mp4", segments=[("red", 2), ("blue", 2)])
    b = make_video(tmp_path / "b" / "v2.mp4", segments=[("green", 2), ("white", 2)])
    c = make_video(tmp_path / "c" / "v3.mp4", segments=[("black", 2), ("yellow", 2)])
    for v in (a, b, c):
        assert len(service.index("tiny", [v]).added) == 1
    ann = tmp_path / "ann.jsonl"
    lines = [
        {"desc_id": 1, "desc": "a red wall", "vid_name": "v2", "duration": 4.0, "ts": [0, 2], "type": "v"},
        {
            "desc_id": 2,
            "desc": "a black screen",
            "vid_name": "v3",
            "duration": 4.0,
            "ts": [0, 2],
            "type": "v",
        },
    ]
    ann.write_text("".join(json.dumps(x) + "\n" for x in lines))
    ev = evaluate_library(service.library("tiny"), service.backend("tiny"), ann, top_k_videos=3)
    assert [q.desc_id for q in ev.queries] == [2]
    assert any("2 videos are named 'v2'" in why for _, why in ev.skipped)
    assert len(ev.predictions.video2idx) == 3  # three videos, two of them named v2.mp4
    assert {row[0] for row in service.table("tiny")} == set(ev.predictions.video2idx)


def test_longer_examples_come_from_the_preloaded_hub_dataset(tmp_path, monkeypatch):
    """A Space preloads C2F_EXAMPLES_REPO (README `preload_from_hub`) into the Hub cache: its videos
    join the showcase's, its queries.json the example queries; unset or not preloaded, the bundled
    examples alone (the cache is only read, never the network)."""
    from c2f.ui.examples import example_queries, example_videos

    bundled_videos, bundled_queries = example_videos(), example_queries()
    repo = tmp_path / "hub" / "datasets--someone--c2f-examples"
    snapshot = repo / "snapshots" / ("a" * 40)
    (snapshot / "films").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    (snapshot / "films" / "long_film.mp4").write_bytes(b"\0")
    (snapshot / "notes.txt").write_text("not a video")
    (snapshot / "queries.json").write_text(json.dumps(["a dog catches a ball"]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("C2F_EXAMPLES_REPO", "someone/c2f-examples")
    assert example_videos(tmp_path / "hub") == [*bundled_videos, snapshot / "films" / "long_film.mp4"]
    assert example_queries(tmp_path / "hub") == [*bundled_queries, "a dog catches a ball"]
    monkeypatch.setenv("C2F_EXAMPLES_REPO", "someone/not-preloaded")
    assert example_videos(tmp_path / "hub") == bundled_videos
    assert example_queries(tmp_path / "hub") == bundled_queries

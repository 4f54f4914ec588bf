"""The demo's service without a browser (tiny mode): visitor ids that cannot be forged and survive a
restart, nothing made for a visitor who only searches, a hostile visitor bounded (rate of new
visitors, global caps, subtitle files, evaluation rows and time, one job each), idle visitors and
orphan folders removed in the background, files written once under unique names, a failed backend
remembered without holding up other modes, analysis keyed by video id."""

from __future__ import annotations

import json
import os
import stat
import threading
import time

import pytest
from videogen import make_text_file_as_video, make_video, write_srt

from c2f.analysis import evaluate_library
from c2f.errors import C2FError
from c2f.ui.config import AppConfig
from c2f.ui.identity import KEY_FILE, VisitorKeys, signing_key
from c2f.ui.jobs import BusyError, Jobs
from c2f.ui.media import folder_bytes, playable_copy, thumbnail
from c2f.ui.quotas import GONE
from c2f.ui.service import SHOWCASE, AppService
from c2f.ui.sweep import remove_orphans
from c2f.ui.text import public_text
from c2f.ui.visitors import DemoFullError, RateLimit


def test_visitor_tokens_cannot_be_forged_and_anything_else_is_no_identity():
    keys = VisitorKeys(b"server secret")
    token = keys.new_token()
    vid = keys.verify(token)
    assert vid and len(vid) == 32 and token.startswith(vid)
    other = keys.new_token()
    assert keys.verify(other) not in (None, vid)
    forged = f"{vid[:-1]}{'0' if vid[-1] != '0' else '1'}.{token.split('.')[1]}"
    assert keys.verify(forged) is None  # an id changed by hand
    assert VisitorKeys(b"another secret").verify(token) is None  # signed by another server
    malformed = [None, "", 3, [token], "a.b.c", vid, token.upper(), token + "\n", "é" * 32 + "." + "0" * 32]
    malformed += [f"{vid}.{'é' * 32}", f"{vid}.{token.split('.')[1][:-1]}\u0660", "\ud800" * 65]
    assert all(keys.verify(t) is None for t in malformed)
    assert keys.media_name(vid) != vid and keys.from_session("s1") != keys.from_session("s2")
    assert keys.from_session("é\ud800") == keys.from_session("é\ud800")  # a client's odd session id
    assert len({keys.media_name(vid), keys.export_name(vid), keys.browser_secret()}) == 3


def test_the_key_is_made_once_kept_private_and_the_same_after_a_restart(tmp_path):
    root = tmp_path / "library"
    key, where = signing_key(root, env={})
    path = root / KEY_FILE
    assert where == str(path) and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing_key(root, env={}) == (key, where)  # a restart reads it back
    assert signing_key(root, env={"C2F_SECRET": "chosen"}) == (b"chosen", "C2F_SECRET")
    # the id and the BrowserState secret (sent to the page) survive; the key never reaches the page
    before, after = AppService(cfg(root)), AppService(cfg(root))
    token = before.browser_token(None)
    assert after.browser_token(token) == token and after.visitor(token, None) == before.visitor(token, None)
    assert before.browser_secret() == after.browser_secret() and key.decode() not in before.browser_secret()
    assert after.browser_token("é" * 65) not in (None, "é" * 65)  # a malformed token gets a new one


def cfg(root, **kw) -> AppConfig:
    return AppConfig(library_root=root, mode="tiny", multi_user=True, **kw)


def test_no_media_made_at_once_by_many_threads(tmp_path):
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


def test_no_server_path_in_visitor_text():
    assert public_text("cannot read /srv/c2f/visitors/ab12/x.mp4: bad") == "cannot read x.mp4: bad"
    assert public_text("3 video(s) added") == "3 video(s) added"


@pytest.fixture
def public(tmp_path):
    return AppService(cfg(tmp_path / "root", secret="s", visitor_max_videos=2))


def on_disk(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_visitor_who_only_searches_makes_nothing(public):
    root = public.config.library_root
    public.start("tiny")  # the showcase
    before = on_disk(root)
    opened = set(public.collections._open)
    for k in range(5):
        who = public.visitor(None, f"session-{k}")
        assert public.table("tiny", who) == [] and public.source("tiny", who) == SHOWCASE
        result, _ = public.search("tiny", "a red wall", 3, 2, who)
        assert result.moments
        with pytest.raises(C2FError, match="the library is empty"):
            public.search("tiny", "a red wall", 3, 2, who, "my videos")
        with pytest.raises(C2FError, match="no video with id"):
            public.remove("tiny", "abc", who)
    assert on_disk(root) == before and set(public.collections._open) == opened
    public.sweeper.stop()


def test_failed_backend_is_remembered_and_never_blocks_another_mode(public):
    with pytest.raises(C2FError) as first:
        public.backend("zero-shot")  # no weights in the tests (offline)
    with pytest.raises(C2FError) as again:
        public.backend("zero-shot")
    assert again.value is first.value  # remembered, not loaded again
    with public.backends._mode_locks["zero-shot"]:  # a load in progress in another thread...
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


def srt(path, cues):
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_srt(path, cues)


def test_subtitle_files_have_their_own_cap_and_count_towards_the_quota(tmp_path):
    service = AppService(cfg(tmp_path / "root", secret="s", max_subtitle_kb=2))
    who = service.visitor(None, "s")
    up = tmp_path / "uploads"  # each file in a folder of its own, as Gradio keeps uploads
    a = make_video(up / "1" / "a.mp4", segments=[("red", 2)])
    b = make_video(up / "2" / "b.mp4", segments=[("blue", 2)])
    subs = [
        srt(up / "3" / "a.srt", [(0.0, 1.0, "a red wall")]),
        srt(up / "4" / "b.srt", [(t, t + 0.01, "word " * 10) for t in range(100)]),  # > 2 KB
        srt(up / "5" / "c.srt", [(0.0, 1.0, "no video of this name")]),
    ]
    out = service.index("tiny", [a, b, *subs], who=who)
    assert sorted(out.added) == ["a.mp4", "b.mp4"]  # b is indexed without its subtitles
    assert dict(out.failed) == {
        "b.srt": "subtitle file larger than the 2 KB limit of this server",
        "c.srt": "no video named c.* in this upload: a subtitle file goes with its video",
    }
    assert {r[1]: r[5] for r in service.table("tiny", who)} == {"a.mp4": "yes", "b.mp4": ""}
    # a subtitle file counts in the visitor's disk: with room for the video but not for its
    # subtitles too, the video is refused, alone
    c = make_video(up / "6" / "c.mp4", segments=[("green", 2)])
    big = srt(up / "7" / "c.srt", [(0.0, 1.0, "x" * 1500)])
    room = 2 * c.stat().st_size + big.stat().st_size // 2
    service.config.visitor_max_disk_mb = (service.usage("tiny", who).bytes + room) / 1024 / 1024
    out = service.index("tiny", [c, big], who=who)
    assert out.added == [] and out.failed == [("c.mp4", "over the quota of 0 MB of disk per visitor")]
    assert service.index("tiny", [c], who=who).added == ["c.mp4"]
    gone = up / "8" / "d.mp4"  # an upload indexed (and discarded) before, sent again by its page
    assert service.index("tiny", [gone], who=who).failed == [("d.mp4", GONE)]
    (up / "9").mkdir()
    text = make_text_file_as_video(up / "9" / "e.mp4")  # named once: before, "(/tmp/.../e.mp4: Invalid data ...)"
    assert service.index("tiny", [text], who=who).failed == [
        ("e.mp4", "not a video file ffmpeg can read (Invalid data found when processing input)")
    ]


def test_past_a_global_cap_the_demo_is_full_and_nothing_else_breaks(tmp_path):
    service = AppService(cfg(tmp_path / "root", secret="s", max_visitors=2, max_videos=4))
    video = make_video(tmp_path / "v.mp4", segments=[("red", 2)])
    other = make_video(tmp_path / "w.mp4", segments=[("blue", 2)])
    third = make_video(tmp_path / "x.mp4", segments=[("green", 2)])
    a, b, c = (service.visitor(None, f"s{k}") for k in range(3))
    assert service.index("tiny", [video], who=a).added == ["v.mp4"]
    assert service.index("tiny", [video, other], who=b).added == ["v.mp4", "w.mp4"]
    with pytest.raises(DemoFullError, match=r"^the demo is full, try later \(2 visitors have videos here\)$"):
        service.index("tiny", [video], who=c)
    assert not service.visitors.exists(c)
    out = service.index("tiny", [other, third], who=a)  # a known visitor, up to the cap of videos
    assert out.added == ["w.mp4"] and out.failed == [
        ("x.mp4", "the demo is full, try later (4 videos are stored here)")
    ]
    with pytest.raises(DemoFullError, match=r"\(4 videos are stored here\)$"):
        service.index("tiny", [third], who=a)  # every video refused: one message
    # everybody else is served as before
    assert service.search("tiny", "a red wall", 3, 2, a)[0].moments
    assert service.search("tiny", "a red wall", 3, 2, c)[0].moments  # the showcase
    service.remove("tiny", service.table("tiny", b)[0][0], b)
    assert service.index("tiny", [third], who=a).added == ["x.mp4"]  # room again


def test_new_visitors_are_rate_limited(tmp_path):
    window = RateLimit(3, seconds=60)
    assert [window.take(now=t) for t in (0, 1, 2, 3, 59.9)] == [True, True, True, False, False]
    assert window.take(now=60.5) and not window.take(now=60.6)  # the first one left the window
    service = AppService(cfg(tmp_path / "root", secret="s", new_visitors_per_minute=2))
    admitted = []
    for k in range(4):
        try:
            admitted.append(service.visitors.admit(service.visitor(None, f"s{k}")).name)
        except DemoFullError as exc:
            assert str(exc) == "the demo is full, try later (more than 2 new visitors this minute)"
    assert len(admitted) == 2 and service.visitors.live() == sorted(admitted)
    assert service.visitors.admit(admitted[0]).is_dir()  # an existing visitor is never refused


def wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.01)


def test_jobs_one_per_visitor_fair_and_bounded():
    jobs = Jobs({"indexing": 1, "evaluation": 1}, waiting=2)
    order, started = [], {k: threading.Event() for k in "abce"}
    release = threading.Event()

    def job(who: str, kind: str) -> None:
        with jobs.slot(who, kind):
            order.append(who)
            started[who].set()
            release.wait(10)

    threads = [threading.Thread(target=job, args=("a", "indexing"))]
    threads[0].start()
    assert started["a"].wait(5)
    with pytest.raises(BusyError, match=r"already have a job running \(indexing\)"), jobs.slot("a", "evaluation"):
        pass
    # an evaluation never waits for indexing: it has its own pool
    threads.append(threading.Thread(target=job, args=("e", "evaluation")))
    threads[-1].start()
    assert started["e"].wait(5)
    for k, who in enumerate("bc"):  # b asks before c; both wait for a's slot
        threads.append(threading.Thread(target=job, args=(who, "indexing")))
        threads[-1].start()
        wait_until(lambda k=k: len(jobs._pools["indexing"].queue) == k + 1)
    assert jobs.busy() == {"a", "b", "c", "e"}
    with pytest.raises(BusyError, match="busy with other visitors"), jobs.slot("d", "indexing"):  # 2 wait
        pass
    release.set()
    for t in threads:
        t.join(10)
    assert order[:2] == ["a", "e"] and order[2:] == ["b", "c"] and jobs.busy() == set()


def annotation_rows(n: int) -> str:
    return "".join(
        json.dumps({"desc_id": k, "desc": "a red wall", "vid_name": "v", "duration": 2.0, "ts": [0, 1]}) + "\n"
        for k in range(n)
    )


def test_evaluation_has_a_row_cap_and_a_time_limit(tmp_path):
    service = AppService(cfg(tmp_path / "root", secret="s", eval_max_rows=20, eval_max_seconds=0))
    who = service.visitor(None, "s")
    service.index("tiny", [make_video(tmp_path / "v.mp4", segments=[("red", 2)])], who=who)
    ann = tmp_path / "ann.jsonl"
    ann.write_text(annotation_rows(21))
    with pytest.raises(C2FError, match="more than 20 rows: this server evaluates up to 20 at once"):
        service.evaluate("tiny", ann, 5, who=who)
    ann.write_text(annotation_rows(20))
    with pytest.raises(C2FError, match=r"ran past this server's 0 s limit \(query 1/20\)"):
        service.evaluate("tiny", ann, 5, who=who)
    service.config.eval_max_seconds = 600
    ev = service.evaluate("tiny", ann, 5, who=who)
    assert len(ev.queries) == 20
    # its download counts in the visitor's disk, and goes with them
    path = service.export_predictions(ev, who)
    assert path.is_file() and service.usage("tiny", who).bytes >= path.stat().st_size
    service.config.visitor_max_disk_mb = (service.usage("tiny", who).bytes - 10) / 1024 / 1024
    with pytest.raises(C2FError, match="does not fit in your disk quota"):
        service.export_predictions(ev, who)
    service.sweeper.idle_seconds = 0
    assert service.sweeper.sweep_idle(now=time.time() + 1) == [who]
    assert not any(f.exists() for f in service.visitor_folders(who))


def test_idle_visitors_go_in_the_background_and_busy_ones_stay(tmp_path):
    service = AppService(cfg(tmp_path / "root", secret="s", idle_minutes=0.5 / 60, sweep_seconds=0.2))
    video = make_video(tmp_path / "v.mp4", segments=[("red", 2)])
    idle, busy = service.visitor(None, "idle"), service.visitor(None, "busy")
    for who in (idle, busy):
        service.index("tiny", [video], who=who)
        service.search("tiny", "a red wall", 3, 2, who)  # (its media made)
    folders = service.visitor_folders(idle)
    assert folders[0].exists() and folders[2].exists()  # media and library (no export yet)
    with service.jobs.slot(busy, "indexing"):
        service.sweeper.start()
        deadline = time.time() + 20
        while any(f.exists() for f in folders) and time.time() < deadline:
            time.sleep(0.1)
        assert not any(f.exists() for f in folders) and service.visitors.exists(busy)
        assert service.collections.find(service.backend("tiny").feature_settings, idle) is None
    service.sweeper.stop()


def test_start_up_removes_media_and_exports_of_no_live_visitor(tmp_path):
    root = tmp_path / "root"
    service = AppService(cfg(root, secret="s"))
    video = make_video(tmp_path / "v.mp4", segments=[("red", 2)])
    live, dead = service.visitor(None, "live"), service.visitor(None, "dead")
    for who in (live, dead):
        service.index("tiny", [video], who=who)
        download(service, who, {"x.json": b"{}"})
    (service.exports.folder(live) / ".tmp-killed").mkdir()  # a download a killed request was making
    gone = [service.collections.media_folder(dead), service.exports.folder(dead)]
    (root / "visitors" / dead).rename(root / "visitors" / ".gone-dead-1234")  # a killed removal
    keep = [service.collections.media_folder(live), service.exports.folder(live), root / "media" / "showcase"]
    keep[2].mkdir(parents=True)
    removed = remove_orphans(root, service.media_root, service.export_root, service.visitors.live(), service.keys)
    leftovers = [root / "visitors" / ".gone-dead-1234", service.exports.folder(live) / ".tmp-killed"]
    assert sorted(map(str, removed)) == sorted(map(str, [*gone, *leftovers]))
    assert not any(f.exists() for f in removed) and all(f.exists() for f in keep)
    # a new key: every old folder is an orphan
    other = AppService(cfg(root, secret="another"))
    assert len(remove_orphans(root, other.media_root, other.export_root, ["0" * 32], other.keys)) == 2
    assert not any(os.scandir(other.export_root))


def download(service: AppService, who: str, files: dict[str, bytes]) -> list:
    """Files for `who` to download, made as a moment export makes them: written into a folder."""

    def make(folder):
        for name, data in files.items():
            (folder / name).write_bytes(data)
        return [folder / name for name in files]

    return service.export(who, make)


def test_downloads_replace_by_name_and_count_in_the_quota(tmp_path):
    service = AppService(cfg(tmp_path / "root", secret="s"))
    who = service.visitor(None, "s")
    first = download(service, who, {"moments.edl": b"a" * 1000, "moments.zip": b"b" * 5000})
    assert [p.name for p in first] == ["moments.edl", "moments.zip"] and service.visitors.exists(who)
    used = service.usage("tiny", who).bytes
    assert used >= 6000
    # room for the new files once the old versions go, not for both
    service.config.visitor_max_disk_mb = (used + 500) / 1024 / 1024
    again = download(service, who, {"moments.zip": b"c" * 5400})
    assert again[0].read_bytes() == b"c" * 5400 and first[0].read_bytes() == b"a" * 1000
    with pytest.raises(C2FError, match="does not fit in your disk quota"):
        download(service, who, {"moments.edl": b"d" * 2000})
    assert first[0].read_bytes() == b"a" * 1000  # the old version is kept
    assert sorted(p.name for p in service.exports.folder(who).iterdir()) == ["moments.edl", "moments.zip"]
    with pytest.raises(ValueError, match="not an export file"):
        download(service, who, {"a name with spaces.json": b""})


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
        {"desc_id": 2, "desc": "a black screen", "vid_name": "v3", "duration": 4.0, "ts": [0, 2], "type": "v"},
    ]
    ann.write_text("".join(json.dumps(x) + "\n" for x in lines))
    lib = service.collection("tiny", None).library
    ev = evaluate_library(lib, service.backend("tiny"), ann, top_k_videos=3)
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

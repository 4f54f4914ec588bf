"""Library operations: add / remove / re-add, duplicates, failures recorded, settings, subtitles, CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_search_engine import TINY, assert_matches_brute_force, brute_force
from videogen import make_text_file_as_video, make_video, write_srt

from c2f.errors import FeatureMismatchError, LibraryError
from c2f.index import ClipIndex
from c2f.library import Library
from c2f.search import load_backend

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny():
    return load_backend("tiny")


def saved_index_keys(lib: Library) -> set[int]:
    d = lib.index_dir(lib.default_index.fingerprint)
    return set(ClipIndex.load(d / (d / "current").read_text()).video_keys())


def test_add_remove_readd(tmp_path: Path, video_dir: Path, tiny) -> None:
    a = make_video(video_dir / "a.mp4", segments=[("red", 1.5), ("blue", 3.0)])
    b = make_video(video_dir / "b.mov", segments=[("white", 3.0)])
    c = make_video(video_dir / "c.mp4", segments=[("yellow", 3.0), ("black", 1.5)])
    lib = Library(tmp_path / "lib", settings=TINY)
    seen: list[tuple[str, float, float]] = []
    report = lib.add([a, b], progress=lambda *p: seen.append(p))
    assert report.ok and [r.name for r in report.added] == ["a.mp4", "b.mov"]
    overall = [p[2] for p in seen]
    assert overall == sorted(overall) and overall[-1] == pytest.approx(1.0)
    assert {p[0] for p in seen} == {"a.mp4", "b.mov"} and all(0 <= p[1] <= 1 for p in seen)
    ref = lib.add(c, copy=False).added[0]  # by reference: the original file is what we play
    assert not ref.is_copy and lib.video_path(ref.video_id) == c.resolve()

    rec_a = report.added[0]
    assert lib.video_path(rec_a.video_id).parent == lib.root / "videos"
    feats = lib.load_features(rec_a.video_id)
    assert rec_a.status == "indexed" and (rec_a.width, rec_a.height) == (160, 120)
    assert rec_a.duration == pytest.approx(4.5, abs=0.05) == feats.video.duration
    assert rec_a.num_clips == feats.num_clips >= 3 and feats.video.source_name == "a.mp4"
    assert saved_index_keys(lib) == {r.key for r in lib.list()}

    lib.remove(rec_a.video_id)
    assert [r.name for r in lib.list()] == ["b.mov", "c.mp4"]
    assert not lib.feature_path(rec_a.video_id).exists() and not Path(rec_a.stored_path).exists()
    assert rec_a.key not in saved_index_keys(lib)
    result = lib.search("a red square", tiny)
    assert {v.name for v in result.videos} == {"b.mov", "c.mp4"}
    lib.remove(ref.video_id)
    assert c.exists()  # a referenced original is never deleted
    with pytest.raises(LibraryError, match="no video"):
        lib.remove(ref.video_id)
    with pytest.raises(LibraryError, match="no video"):
        lib.video_path("nope")

    again = lib.add([a, c]).added
    assert [r.video_id for r in again] == [rec_a.video_id, ref.video_id]  # ids are content hashes
    assert again[0].key != rec_a.key
    result = lib.search("a red square", tiny, moments_per_video=2)
    assert_matches_brute_force(result, brute_force(lib, "a red square", top_k=10, moments=2), moments=2)


def test_duplicate_content_is_a_no_op(tmp_path: Path, video_dir: Path) -> None:
    a = make_video(video_dir / "a.mp4", segments=[("red", 3.0)])
    twin = shutil.copyfile(a, video_dir / "same_bytes_other_name.mp4")
    lib = Library(tmp_path / "lib", settings=TINY)
    first = lib.add([a, twin])
    assert len(first.added) == 1 and first.duplicates == [
        ("same_bytes_other_name.mp4", first.added[0].video_id)
    ]
    again = lib.add(a)
    assert not again.added and again.duplicates == [("a.mp4", first.added[0].video_id)]
    assert len(lib.list()) == 1 and len(list((lib.root / "videos").iterdir())) == 1


def test_failing_videos_are_recorded_and_others_indexed(tmp_path: Path, video_dir: Path, tiny) -> None:
    good = make_video(video_dir / "good.mp4", segments=[("green", 3.0)])
    bad = make_text_file_as_video(video_dir / "notes.mp4")
    missing = video_dir / "missing.mp4"
    lib = Library(tmp_path / "lib", settings=TINY)
    report = lib.add([bad, missing, good])
    assert [r.name for r in report.added] == ["good.mp4"]
    assert [name for name, _ in report.failed] == ["notes.mp4", "missing.mp4"]
    assert str(bad) in report.failed[0][1]  # the message names the user's file, not our copy
    rows = {r.name: r for r in lib.list()}
    assert rows["notes.mp4"].status == "failed" and "not a video" in rows["notes.mp4"].error
    assert rows["good.mp4"].status == "indexed" and "missing.mp4" not in rows
    assert not Path(rows["notes.mp4"].stored_path).exists()  # no copy kept for a failed video
    assert [v.name for v in lib.search("grass", tiny).videos] == ["good.mp4"]
    retry = lib.add(bad)  # a failed video is tried again, and fails again
    assert len(retry.failed) == 1 and len(lib.list()) == 2


def test_settings_are_fixed_at_creation(tmp_path: Path) -> None:
    Library(tmp_path / "lib", settings="tiny-clip-only")
    assert Library(tmp_path / "lib").settings == TINY
    with pytest.raises(FeatureMismatchError, match="created with feature preset 'tiny-clip-only'"):
        Library(tmp_path / "lib", settings="tiny")


def test_default_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C2F_LIBRARY", str(tmp_path / "env_lib"))
    assert Library(settings=TINY).root == tmp_path / "env_lib"
    assert (tmp_path / "env_lib" / "catalog.sqlite").is_file()


def test_sidecar_and_given_subtitles(tmp_path: Path, video_dir: Path) -> None:
    a = make_video(video_dir / "talk.mp4", segments=[("red", 3.0)])
    write_srt(video_dir / "talk.srt", [(0.0, 1.0, "hello there")])
    b = make_video(video_dir / "other.mp4", segments=[("blue", 3.0)])
    subs = write_srt(tmp_path / "elsewhere.srt", [(1.0, 2.0, "bonjour")])
    lib = Library(tmp_path / "lib", settings=TINY)
    report = lib.add([a, b], subtitles={"other.mp4": subs})
    texts = {r.name: [s.text for s in lib.load_features(r.video_id).subtitles] for r in report.added}
    assert texts == {"talk.mp4": ["hello there"], "other.mp4": ["bonjour"]}
    assert all(r.has_subtitles for r in lib.list())


def test_malformed_subtitles_do_not_reject_the_video(
    tmp_path: Path, video_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = make_video(video_dir / "broken.mp4", segments=[("red", 3.0)])
    (video_dir / "broken.srt").write_text("1\n00:00:01,000 --> oops\nhello\n")  # no readable cue
    half = make_video(video_dir / "half.mp4", segments=[("blue", 3.0)])
    write_srt(video_dir / "half.srt", [(0.0, 1.0, "kept"), (2.0, 1.0, "ends before it starts")])
    lib = Library(tmp_path / "lib", settings=TINY)
    report = lib.add([broken, half])
    assert report.ok and [r.name for r in report.added] == ["broken.mp4", "half.mp4"]
    warnings = dict(report.warnings)
    assert warnings["broken.mp4"].startswith(f"{video_dir / 'broken.srt'}: line 2: unreadable cue timing")
    assert warnings["broken.mp4"].endswith("indexed without subtitles")
    assert warnings["half.mp4"].startswith(f"{video_dir / 'half.srt'}: line 6: cue ends before it starts")
    rows = {r.name: r for r in lib.list()}
    assert all(r.status == "indexed" and r.error is None for r in rows.values())
    assert {name: r.note for name, r in rows.items()} == warnings  # the reason stays in the catalog
    assert not rows["broken.mp4"].has_subtitles and lib.load_features(rows["broken.mp4"].video_id).subtitles == []
    assert [s.text for s in lib.load_features(rows["half.mp4"].video_id).subtitles] == ["kept"]
    assert "indexed without subtitles" in caplog.text


def test_reindex_rebuilds_the_same_index(tmp_path: Path, video_dir: Path, tiny) -> None:
    for name, colour in [("a.mp4", "red"), ("b.mp4", "blue")]:
        make_video(video_dir / name, segments=[(colour, 3.0), ("white", 1.5)])
    lib = Library(tmp_path / "lib", settings=TINY)
    lib.add(video_dir)
    before = lib.search("sky", tiny).to_dict()
    shutil.rmtree(lib.root / "indexes")
    assert lib.reindex(tiny) == 2
    after = Library(lib.root).search("sky", tiny).to_dict()
    before.pop("timings_ms"), after.pop("timings_ms")
    assert before == after


def test_cli_index_list_remove(tmp_path: Path, video_dir: Path) -> None:
    make_video(video_dir / "a.mp4", segments=[("red", 3.0)])
    make_text_file_as_video(video_dir / "bad.mp4")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "C2F_OFFLINE": "1"}
    lib_dir = str(tmp_path / "lib")

    def c2f(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "c2f", *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)

    proc = c2f("index", str(video_dir), "--library", lib_dir, "--preset", "tiny-clip-only")
    assert proc.returncode == 1 and "1 added" in proc.stdout and "failed: bad.mp4" in proc.stdout
    listing = c2f("library", "list", "--library", lib_dir)
    assert listing.returncode == 0 and "indexed" in listing.stdout and "failed" in listing.stdout
    video_id = next(r.video_id for r in Library(lib_dir).list() if r.name == "a.mp4")
    assert c2f("library", "remove", video_id, "--library", lib_dir).returncode == 0
    assert [r.name for r in Library(lib_dir).list()] == ["bad.mp4"]
    proc = c2f("library", "remove", "nope", "--library", lib_dir)
    assert proc.returncode == 2 and "no video 'nope'" in proc.stderr
    assert np.isfinite(Library(lib_dir).list()[0].added_at)
    proc = c2f("search", "a cat", "--library", str(tmp_path / "typo"), "--mode", "tiny")
    assert proc.returncode == 2 and "no library at" in proc.stderr and not (tmp_path / "typo").exists()


def test_lost_feature_file_leaves_the_other_videos_searchable(
    tmp_path: Path, video_dir: Path, tiny, caplog: pytest.LogCaptureFixture
) -> None:
    for name, colour in [("a.mp4", "red"), ("b.mp4", "blue")]:
        make_video(video_dir / name, segments=[(colour, 3.0)])
    lib = Library(tmp_path / "lib", settings=TINY)
    added = lib.add(video_dir).added
    lib.feature_path(added[0].video_id).unlink()
    shutil.rmtree(lib.root / "indexes")  # the index must be rebuilt from the feature files
    result = Library(lib.root).search("sky", tiny)
    assert [v.name for v in result.videos] == ["b.mp4"]
    assert "a.mp4 is left out of the search" in caplog.text


def test_cli_index_names_the_subtitles_it_could_not_read(
    tmp_path: Path, video_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from c2f.cli import main

    make_video(video_dir / "talk.mp4", segments=[("red", 3.0)])
    (video_dir / "talk.srt").write_text("1\n00:00:01,000 --> oops\nhello\n")
    code = main(["index", str(video_dir), "--library", str(tmp_path / "lib"), "--mode", "tiny"])
    out = capsys.readouterr().out
    assert code == 0 and "1 added" in out
    assert f"  warning: talk.mp4: {video_dir / 'talk.srt'}: line 2: unreadable cue timing" in out

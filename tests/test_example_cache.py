"""The key of the demo's cache of example results (c2f.ui.example_cache): it changes with whatever
the results depend on (mode, backend, showcase, queries, code) and with nothing else; stale keyed
folders go from the app's own folder only; caching is asked for on a public deployment only."""

from __future__ import annotations

import dataclasses
import os

from c2f.library import VideoRecord
from c2f.ui.example_cache import examples_cache_key, keyed_folder, source_fingerprint
from c2f.ui.launch import parse_args

VIDEOS = [
    VideoRecord(
        key=k,
        video_id=vid,
        name=name,
        content_hash=f"{vid}-content",
        duration=5.0,
        fps=25.0,
        width=320,
        height=240,
        num_clips=4,
        settings_fingerprint="tiny-clip-only:1",
        status="indexed",
        error=None,
        added_at=1000.0 + k,
        stored_path=f"/app/assets/videos/{name}",
        is_copy=False,
        has_subtitles=False,
    )
    for k, (vid, name) in enumerate([("aa11", "bikes.mp4"), ("bb22", "bunny.mp4")], start=1)
]
QUERIES = ["a taxi in busy city traffic", "a cyclist rides past a van"]


def key(mode="tiny", backend="zeroshot-1", showcase=VIDEOS, queries=QUERIES, source="src-1") -> str:
    return examples_cache_key(mode, backend, showcase, queries, source)


def test_the_key_changes_with_what_the_results_depend_on_and_nothing_else():
    base = key()
    changed = [
        key(mode="learned:tvr"),
        key(backend="c2f-0123456789abcdef"),
        key(backend=None),  # the mode cannot run
        key(showcase=VIDEOS[:1]),  # a video removed
        key(showcase=[VIDEOS[0], dataclasses.replace(VIDEOS[1], content_hash="other")]),  # replaced
        key(
            showcase=[VIDEOS[0], dataclasses.replace(VIDEOS[1], settings_fingerprint="value:2")]
        ),  # re-extracted
        key(showcase=[VIDEOS[0], dataclasses.replace(VIDEOS[1], status="failed")]),
        key(showcase=[VIDEOS[0], dataclasses.replace(VIDEOS[1], has_subtitles=True)]),
        key(queries=[*QUERIES, "a dog catches a ball"]),
        key(queries=QUERIES[::-1]),  # rows are found by number
        key(source="src-2"),
    ]
    assert base not in changed and len(set(changed)) == len(changed)
    moved = [
        dataclasses.replace(v, added_at=0.0, stored_path=f"/elsewhere/{v.name}", is_copy=True) for v in VIDEOS
    ]
    assert key() == base == key(showcase=moved) == key(showcase=VIDEOS[::-1])


def test_the_source_fingerprint_reads_names_and_contents_not_times_or_compiled_files(tmp_path):
    package, page = tmp_path / "pkg", tmp_path / "app.py"
    (package / "sub" / "__pycache__").mkdir(parents=True)
    (package / "a.py").write_text("A = 1\n")
    (package / "sub" / "config.json").write_text("{}")
    (package / "sub" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    page.write_text("layout = 1\n")

    def fingerprint() -> str:
        return source_fingerprint(package, [page])

    first = fingerprint()
    os.utime(package / "a.py", (0, 0))
    (package / "sub" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\1")
    assert fingerprint() == first
    seen = {first}
    for change in (
        lambda: (package / "sub" / "config.json").write_text('{"width": 2}'),  # a data file of the package
        lambda: (package / "a.py").rename(package / "b.py"),
        lambda: page.write_text("layout = 2\n"),
    ):
        change()
        seen.add(fingerprint())
    assert len(seen) == 4


def test_stale_keyed_folders_go_from_the_apps_own_folder_only(tmp_path):
    own, given = tmp_path / "own", tmp_path / "given"
    for root in (own, given):
        for name in ("c2f-old", "c2f-new", ".gone-c2f-older-1234"):
            (root / name / "26").mkdir(parents=True)
            (root / name / "26" / "log.csv").write_text("results")
    assert keyed_folder(own, "new", own_root=True) == own / "c2f-new"
    assert sorted(p.name for p in own.iterdir()) == ["c2f-new"]
    assert (own / "c2f-new" / "26" / "log.csv").read_text() == "results"  # the current one is kept
    assert keyed_folder(given, "newer", own_root=False) == given / "c2f-newer"
    assert sorted(p.name for p in given.iterdir()) == [
        ".gone-c2f-older-1234",
        "c2f-new",
        "c2f-newer",
        "c2f-old",
    ]


def test_examples_are_cached_on_a_public_deployment_only():
    assert parse_args(["--cache-examples", "--multi-user"], {}).cache_examples is True
    assert parse_args(["--cache-examples", "--no-multi-user"], {}).cache_examples is False
    assert parse_args([], {"SPACE_ID": "a/b", "C2F_MULTI_USER": "0"}).cache_examples is False

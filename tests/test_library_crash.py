"""Robustness: an indexing process killed mid-way (SIGKILL) leaves a usable library that resumes,
and searches running while videos are added always see one committed state."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_search_engine import TINY, assert_matches_brute_force, brute_force
from videogen import make_video

from c2f.library import Library
from c2f.search import load_backend

ROOT = Path(__file__).resolve().parents[1]
COLOURS = ["red", "blue", "green", "yellow", "white", "magenta", "cyan", "orange"]

ADD_SCRIPT = """
import sys
from c2f.library import Library
lib = Library(sys.argv[1])
def progress(name, video_fraction, overall):
    print(name, video_fraction, flush=True)
lib.add(sys.argv[2:], progress=progress)
print("finished", flush=True)
"""


def make_videos(folder: Path, count: int, seconds: float = 3.0) -> list[Path]:
    return [
        make_video(folder / f"v{i}.mp4", segments=[(COLOURS[i % 8], seconds), ("black", 1.5)])
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def tiny():
    return load_backend("tiny")


def test_killed_indexing_run_keeps_library_usable_and_resumes(tmp_path: Path, video_dir: Path, tiny) -> None:
    videos = make_videos(video_dir, 5, seconds=6.0)
    lib = Library(tmp_path / "lib", settings=TINY)
    assert lib.add(videos[0]).ok
    query = "a red ball"
    before = lib.search(query, tiny).to_dict()

    env = {**os.environ, "PYTHONPATH": str(ROOT), "C2F_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", ADD_SCRIPT, str(lib.root), *map(str, videos[1:])],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        # Kill as soon as the third new video starts: two are done, one is in flight.
        for line in proc.stdout:
            name, _, _fraction = line.strip().rpartition(" ")
            if name == "v3.mp4":
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    status = {r.name: r.status for r in lib.list()}
    assert status == {"v0.mp4": "indexed", "v1.mp4": "indexed", "v2.mp4": "indexed", "v3.mp4": "pending"}
    # The library is usable as left: the committed videos are searchable, exactly.
    mid = Library(lib.root).search(query, tiny, moments_per_video=2)
    assert_matches_brute_force(mid, brute_force(lib, query, top_k=10, moments=2), moments=2)
    assert {v["video_id"] for v in before["videos"]} <= {v.video_id for v in mid.videos}

    # Running the same command again finishes the job; nothing is done twice.
    report = Library(lib.root).add(videos)
    assert [r.name for r in report.added] == ["v3.mp4", "v4.mp4"]
    assert [n for n, _ in report.duplicates] == ["v0.mp4", "v1.mp4", "v2.mp4"]
    assert {r.status for r in lib.list()} == {"indexed"} and len(lib.list()) == 5
    assert not list(lib.root.rglob(".tmp-*"))  # leftovers of the killed writer were cleaned
    after = Library(lib.root).search(query, tiny, moments_per_video=2)
    assert_matches_brute_force(after, brute_force(lib, query, top_k=10, moments=2), moments=2)


def test_resume_finishes_pending_videos(tmp_path: Path, video_dir: Path, tiny) -> None:
    a, b = make_videos(video_dir, 2)
    lib = Library(tmp_path / "lib", settings=TINY)
    lib.add(a)
    # What a killed run leaves: the copy is in place and the row is pending.
    stored = lib.root / "videos" / "pending.mp4"
    stored.write_bytes(b.read_bytes())
    from c2f.features.extract import file_sha256

    h = file_sha256(b)
    lib.catalog.insert_pending(h[:12], "v1.mp4", h, str(stored), True)
    assert [v.name for v in lib.search("x", tiny).videos] == ["v0.mp4"]
    report = lib.resume()
    assert [r.name for r in report.added] == ["v1.mp4"]
    assert sorted(v.name for v in lib.search("x", tiny).videos) == ["v0.mp4", "v1.mp4"]


def test_search_while_adding_sees_only_committed_states(tmp_path: Path, video_dir: Path, tiny) -> None:
    videos = make_videos(video_dir, 5)
    lib = Library(tmp_path / "lib", settings=TINY)
    lib.add(videos[0])
    order = [lib.list()[0].video_id]
    errors: list[BaseException] = []
    seen: list[list[str]] = []
    stop = threading.Event()

    def search_loop(searcher: Library) -> None:
        while not stop.is_set():
            try:
                result = searcher.search("a blue sky", tiny, top_k_videos=10)
                for v in result.videos:  # each curve belongs to its video and score
                    assert abs(float(v.similarity.max()) - v.video_score) < 1e-5
                scores = [v.video_score for v in result.videos]
                # best first; scores equal within float64 rounding are ordered by video key instead
                assert all(a >= b - 1e-12 for a, b in itertools.pairwise(scores)), scores
                seen.append([v.video_id for v in result.videos])
            except BaseException as exc:  # reported below
                errors.append(exc)
                return

    # Two searchers share the writer's Library object (as the UI does), one is a separate reader.
    threads = [threading.Thread(target=search_loop, args=(s,)) for s in (lib, lib, Library(lib.root))]
    for t in threads:
        t.start()
    try:
        report = lib.add(videos[1:])
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors
    order += [r.video_id for r in report.added]
    assert len(order) == 5 and len(seen) >= 2
    # Videos are committed one by one, so every search saw the first m of them for some m >= 1.
    for ids in seen:
        assert sorted(ids) == sorted(order[: len(ids)])
    final = lib.search("a blue sky", tiny, top_k_videos=10, moments_per_video=2)
    assert_matches_brute_force(final, brute_force(lib, "a blue sky", top_k=10, moments=2), moments=2)

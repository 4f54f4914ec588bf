"""Many videos at once: decoding worker processes give the same feature files as one at a time."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from videogen import make_text_file_as_video, make_video, write_srt

from c2f.errors import C2FError
from c2f.features import get_preset, load_features
from c2f.features.extract import extract_to_dir
from c2f.features.parallel import VideoJob, decode_workers, extract_many


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("many")
    videos = [
        make_video(d / "a.mp4", seconds=4.0),  # 3 clips
        make_text_file_as_video(d / "bad.mp4"),
        make_video(d / "b.mkv", seconds=7.0, size=(128, 96)),  # 5 clips, two groups with S3D
        make_video(d / "sub" / "a.mp4", seconds=2.0, segments=[("red", 1.0), ("blue", 1.0)]),
    ]
    write_srt(d / "b.srt", [(0.5, 2.0, "hello")])
    return videos


@pytest.mark.parametrize("preset", ["tiny-clip-only", "tiny"])
def test_workers_write_the_same_files_as_one_at_a_time(folder, tmp_path, preset):
    settings = get_preset(preset)
    seen: list[str] = []
    serial = extract_to_dir(folder, tmp_path / "serial", settings, workers=0)
    parallel = extract_to_dir(
        folder, tmp_path / "parallel", settings, workers=2, on_outcome=lambda o: seen.append(o.video.name)
    )
    assert [(o.video, o.output.name if o.output else None) for o in parallel] == [
        (o.video, o.output.name if o.output else None) for o in serial
    ]
    assert [o.output.name if o.output else None for o in parallel] == [
        "a.safetensors",
        None,
        "b.safetensors",
        "a-2.safetensors",
    ]
    assert parallel[1].error == serial[1].error and "bad.mp4" in parallel[1].error
    assert sorted(seen) == sorted(v.name for v in folder)  # every outcome reported once
    for s, p in zip(serial, parallel, strict=True):
        if s.output is None:
            continue
        a, b = load_features(s.output), load_features(p.output)
        assert (a.video_id, a.streams, a.subtitles, a.video) == (b.video_id, b.streams, b.subtitles, b.video)
        np.testing.assert_array_equal(a.clip_times, b.clip_times)
        np.testing.assert_allclose(a.features, b.features, rtol=0, atol=1e-5)
    assert load_features(tmp_path / "parallel" / "b.safetensors").subtitles[0].text == "hello"


def test_extract_many_reports_every_job_and_bounds_the_queue(folder):
    settings = get_preset("tiny-clip-only")
    jobs = [VideoJob(v, f"v{i}") for i, v in enumerate(folder)]
    done: dict[int, float] = {}
    results = list(
        extract_many(jobs, settings, workers=3, depth=1, progress=lambda j, d, t: done.__setitem__(j, d / t))
    )
    assert sorted(r.index for r in results) == [0, 1, 2, 3]
    by_index = {r.index: r for r in results}
    assert by_index[1].features is None and "bad.mp4" in by_index[1].error
    assert [by_index[i].features.num_clips for i in (0, 2, 3)] == [3, 5, 2]
    assert all(by_index[i].features.video.content_hash for i in (0, 2, 3))  # hashed by the worker
    assert done == {0: 1.0, 2: 1.0, 3: 1.0}


def test_worker_count_setting(monkeypatch):
    monkeypatch.setenv("C2F_DECODE_WORKERS", "3")
    assert decode_workers() == 3
    assert decode_workers(0) == 0  # an explicit count wins over the environment
    monkeypatch.setenv("C2F_DECODE_WORKERS", "many")
    with pytest.raises(C2FError, match="C2F_DECODE_WORKERS"):
        decode_workers()
    monkeypatch.delenv("C2F_DECODE_WORKERS")
    monkeypatch.setattr("c2f.features.parallel.available_cores", lambda: 2)
    assert decode_workers(device="cpu") == 0  # measured: 2 cores gain nothing (BENCHMARKS.md)
    monkeypatch.setattr("c2f.features.parallel.available_cores", lambda: 16)
    assert decode_workers(device="cpu") == 4


def test_library_add_with_workers_equals_one_at_a_time(folder, tmp_path):
    from c2f.features.parallel import make_extractor
    from c2f.library import Library

    serial = Library(tmp_path / "serial", settings="tiny-clip-only")
    parallel = Library(tmp_path / "parallel", settings="tiny-clip-only")
    a = serial.add(folder, extractor=make_extractor("local", workers=0))
    b = parallel.add(folder, extractor=make_extractor("local", workers=2))
    assert sorted(r.video_id for r in b.added) == sorted(r.video_id for r in a.added)
    assert len(b.added) == 3 and [name for name, _ in b.failed] == ["bad.mp4"]
    assert b.failed[0][1] == a.failed[0][1]  # the user's file named, not the library's copy
    assert {r.video_id: r.status for r in parallel.list()} == {r.video_id: r.status for r in serial.list()}
    for rec in b.added:
        x, y = serial.load_features(rec.video_id), parallel.load_features(rec.video_id)
        assert x.video == y.video and x.subtitles == y.subtitles
        np.testing.assert_allclose(x.features, y.features, rtol=0, atol=1e-5)
    # the index kept current while adding holds every added video
    first = parallel.search("anything", backend="tiny", top_k_videos=5)
    assert {v.video_id for v in first.videos} == {r.video_id for r in b.added}


def test_engine_arguments_are_checked():
    from c2f.features.parallel import make_extractor

    assert make_extractor("local", workers=0) is None  # today's one-at-a-time path
    with pytest.raises(C2FError, match="--address goes with --engine ray"):
        make_extractor("local", address="auto")
    with pytest.raises(C2FError, match="unknown engine 'spark'"):
        make_extractor("spark")


def _shared_blocks() -> set[str]:
    return {p.name for p in Path("/dev/shm").iterdir() if not p.name.startswith("sem.")}


def _left_over(before: set[str], within_s: float = 5.0) -> set[str]:
    """Blocks present now and not before; others' short-lived blocks (tests running beside this
    one) get a few seconds to go, a leaked block stays."""
    deadline = time.monotonic() + within_s
    while (extra := _shared_blocks() - before) and time.monotonic() < deadline:
        time.sleep(0.2)
    return extra


@pytest.fixture(scope="module")
def long_videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("long")
    # 10 clips each: two groups (8 + 2) for tiny-clip-only, so workers hold groups when the run stops
    return [make_video(d / f"v{i}.mp4", seconds=15.0, size=(96, 64), fps=10) for i in range(4)]


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs /dev/shm (Linux)")
@pytest.mark.parametrize("abort", ["cancel", "error", "worker killed"])
def test_an_aborted_run_leaves_no_shared_memory(long_videos, abort):
    settings = get_preset("tiny-clip-only")
    jobs = [VideoJob(v, v.stem) for v in long_videos]
    before = _shared_blocks()
    killed: list[int] = []

    def progress(job: int, done: float, total: float) -> None:
        if abort == "error":
            raise RuntimeError("the caller's progress callback failed")
        if abort == "worker killed" and not killed:
            time.sleep(1.0)  # the workers decode meanwhile and fill their blocks
            victim = next(p for p in mp.active_children() if p.name.startswith("c2f-decode"))
            os.kill(victim.pid, signal.SIGKILL)
            killed.append(victim.pid)

    run = extract_many(jobs, settings, workers=2, depth=1, progress=progress)
    if abort == "cancel":
        next(run)  # one video done; the workers go on decoding into their blocks
        time.sleep(1.0)
        run.close()  # the caller stops early (a cancel)
    elif abort == "error":
        with pytest.raises(RuntimeError, match="progress callback failed"):
            list(run)
    else:
        with pytest.raises(C2FError, match=r"decoding worker c2f-decode-\d died \(exit code -9\)"):
            list(run)
    assert not _left_over(before)
    assert not [p for p in mp.active_children() if p.name.startswith("c2f-decode")]  # none left running

"""Extracting folders: sidecar and explicit subtitles, name clashes, failures, decoder thread cleanup."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading

import numpy as np
import pytest
from videogen import make_text_file_as_video, make_video, write_srt

from c2f.features import get_preset, load_features
from c2f.features.extract import _prefetch, extract_features, extract_to_dir, file_sha256
from c2f.features.store import Subtitle
from c2f.features.subtitles import align_subtitles

FAST = get_preset("tiny-clip-only")


def test_sidecar_subtitles_are_stored_and_align(video_dir):
    path = make_video(video_dir / "talk.mp4", seconds=4.0)  # 3 clips
    write_srt(video_dir / "talk.srt", [(0.2, 2.0, "hello"), (3.1, 4.4, "bye")])
    feats = extract_features(path, FAST)
    assert feats.subtitles == [Subtitle(0.2, 2.0, "hello"), Subtitle(3.1, 4.4, "bye")]
    al = align_subtitles(feats.subtitles, feats.num_clips, FAST.clip_seconds)
    np.testing.assert_array_equal(al.clip_to_subtitle, [0, 0, 1])
    # an explicit list wins over the sidecar; an empty list means "no subtitles"
    assert extract_features(path, FAST, subtitles=[]).subtitles == []


def test_extract_to_dir_names_failures_and_subtitle_folder(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    a1 = make_video(one / "a.mp4", seconds=1.0)
    a2 = make_video(two / "a.mp4", seconds=2.0)
    bad = make_text_file_as_video(one / "bad.mp4")
    subs = tmp_path / "subs"
    subs.mkdir()
    write_srt(subs / "a.srt", [(0.0, 1.0, "from the folder")])
    seen = []
    outcomes = extract_to_dir(
        [a1, bad, a2], tmp_path / "out", FAST, subtitles=subs, progress=lambda i, d, t: seen.append(i)
    )
    assert [o.output.name if o.output else None for o in outcomes] == [
        "a.safetensors",
        None,
        "a-2.safetensors",
    ]
    assert outcomes[1].error and "bad.mp4" in outcomes[1].error
    assert sorted(set(seen)) == [0, 2]
    second = load_features(tmp_path / "out" / "a-2.safetensors")
    assert second.video_id == "a-2" and second.num_clips == 2
    assert second.video.content_hash == file_sha256(a2)  # hashed ahead, while "bad" was handled
    assert second.subtitles == [Subtitle(0.0, 1.0, "from the folder")]


def test_one_subtitle_file_for_many_videos_is_refused(video_dir, tmp_path):
    a, b = make_video(video_dir / "a.mp4", seconds=1.0), make_video(video_dir / "b.mp4", seconds=1.0)
    srt = write_srt(tmp_path / "x.srt", [(0.0, 1.0, "x")])
    outcomes = extract_to_dir([a, b], tmp_path / "out", FAST, subtitles=srt)
    assert all(o.error and "several videos" in o.error for o in outcomes)


def test_decoder_thread_stops_when_the_consumer_does():
    produced = []

    def endless():
        for i in itertools.count():
            produced.append(i)
            yield np.zeros(1)

    it = _prefetch(endless(), depth=2)
    next(it)
    it.close()  # e.g. the encoder raised: the generator is closed
    assert not any(t.name == "c2f-decode" for t in threading.enumerate())
    assert len(produced) <= 5  # bounded read-ahead


def test_decoder_errors_reach_the_consumer():
    def failing():
        yield np.zeros(1)
        raise RuntimeError("decoder broke")

    it = _prefetch(failing())
    next(it)
    with pytest.raises(RuntimeError, match="decoder broke"):
        next(it)


def test_cli_subtitles_option_and_empty_input(video_dir, tmp_path):
    make_video(video_dir / "a.mp4", seconds=2)
    srt = write_srt(tmp_path / "subs.srt", [(0.5, 1.0, "given")])
    out = tmp_path / "feats"
    cmd = [sys.executable, "-m", "c2f", "extract", str(video_dir / "a.mp4"), "--out", str(out)]
    proc = subprocess.run(
        [*cmd, "--preset", "tiny-clip-only", "--subtitles", str(srt)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert load_features(out / "a.safetensors").subtitles == [Subtitle(0.5, 1.0, "given")]
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "c2f", "extract", str(empty), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "error: no videos found in" in proc.stderr

"""Probing and decoding: every container we promise, exact sample times, bad input, bounded memory."""

from __future__ import annotations

import resource
import subprocess

import numpy as np
import pytest
from videogen import (
    make_audio_only,
    make_text_file_as_video,
    make_truncated,
    make_vfr_video,
    make_video,
    make_zero_length,
)

from c2f.errors import (
    CorruptVideoError,
    EmptyVideoError,
    NotAFileError,
    NotAVideoError,
    NoVideoStreamError,
)
from c2f.video import iter_frames, probe_video, sample_times
from c2f.video.tools import ffmpeg_exe

COLOURS = {"red": (255, 0, 0), "lime": (0, 255, 0), "blue": (0, 0, 255), "white": (255, 255, 255)}


def decode_all(path, fps=4.0, short_side=32, backend="auto", **kw):
    chunks = list(iter_frames(path, fps=fps, short_side=short_side, backend=backend, **kw))
    return (
        np.concatenate([c.frames for c in chunks]),
        np.concatenate([c.times for c in chunks]),
        np.concatenate([c.pts for c in chunks]),
        chunks,
    )


def nearest_colour(frame: np.ndarray) -> str:
    mean = frame.reshape(-1, 3).mean(0)
    return min(COLOURS, key=lambda c: np.abs(mean - COLOURS[c]).sum())


@pytest.mark.parametrize("ext", ["mp4", "mkv", "mov", "webm", "avi"])
@pytest.mark.parametrize("backend", ["decord", "ffmpeg"])
def test_segment_colours_at_exact_sample_times(video_dir, ext, backend):
    # 1 s red, 1 s lime, 1 s blue at 10 fps: sample t_k = (k + 0.5) / 4 must show the colour on screen.
    path = make_video(video_dir / f"seg.{ext}", segments=[("red", 1.0), ("lime", 1.0), ("blue", 1.0)], fps=10)
    info = probe_video(path)
    assert info.duration == pytest.approx(3.0, abs=0.05)
    frames, times, pts, _ = decode_all(path, backend=backend)
    np.testing.assert_allclose(times, (np.arange(12) + 0.5) / 4)
    assert frames.shape == (12, 32, 42, 3) and frames.dtype == np.uint8
    expected = ["red"] * 4 + ["lime"] * 4 + ["blue"] * 4
    assert [nearest_colour(f) for f in frames] == expected
    # pts = last source frame at or before t (frames every 0.1 s)
    np.testing.assert_allclose(pts, np.floor(times * 10 + 1e-6) / 10, atol=1e-3)


def test_backends_agree_and_chunks_are_bounded(video_dir):
    path = make_video(video_dir / "pattern.mp4", seconds=4, fps=25, size=(160, 120))
    a, ta, pa, chunks = decode_all(path, fps=5, backend="decord", chunk_frames=7)
    b, tb, pb, _ = decode_all(path, fps=5, backend="ffmpeg", chunk_frames=7)
    assert max(len(c.times) for c in chunks) == 7
    np.testing.assert_allclose(ta, tb)
    np.testing.assert_allclose(pa, pb, atol=1e-3)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 8  # scalers differ slightly


def test_variable_frame_rate_timestamps(video_dir):
    path = make_vfr_video(video_dir / "vfr.mp4")
    seen = []
    for backend in ("decord", "ffmpeg"):
        _, times, pts, _ = decode_all(path, fps=20, backend=backend)
        assert np.all(pts <= times + 1e-6) and np.all(np.diff(pts) >= 0)
        in_dense = (times > 1.05) & (times < 1.95)  # 30 fps part: a new frame at every sample
        assert len(np.unique(pts[in_dense])) == in_dense.sum()
        assert len(np.unique(pts[~in_dense])) < (~in_dense).sum()  # 10 fps parts repeat frames
        seen.append(pts)
    np.testing.assert_allclose(seen[0], seen[1], atol=1e-3)


def test_rotated_phone_video_comes_out_upright(video_dir):
    path = make_video(video_dir / "rot.mp4", seconds=1, size=(160, 96), rotate=90)
    info = probe_video(path)
    assert (info.width, info.height, info.rotation) == (96, 160, 90)
    frames, *_ = decode_all(path, short_side=48)
    assert frames.shape[1:] == (80, 48, 3)  # portrait


def test_odd_size_short_video_and_audio(video_dir):
    path = make_video(video_dir / "odd.mp4", seconds=0.6, size=(161, 97), audio=True, vcodec="libx264")
    info = probe_video(path)
    assert info.has_audio and info.duration < 1.5
    frames, times, _, _ = decode_all(path, fps=16 / 1.5, short_side=32)
    assert frames.shape[1] % 2 == 0 and frames.shape[2] % 2 == 0
    assert len(times) == int(np.ceil(info.duration * 16 / 1.5 - 1e-9))


def test_decord_timeout_falls_back_to_ffmpeg(video_dir, monkeypatch):
    path = make_video(video_dir / "slow.mp4", seconds=2)
    ref, *_ = decode_all(path, backend="ffmpeg")
    # A deadline no decoder can meet makes decord give up; auto must still return the right frames.
    got, *_ = decode_all(path, backend="auto", timeout_s=1e-9)
    np.testing.assert_array_equal(got, ref)


def test_sample_times_cover_the_video():
    np.testing.assert_allclose(sample_times(1.0, 2.0), [0.25, 0.75])
    assert len(sample_times(0.01, 1 / 1.5)) == 1


@pytest.mark.parametrize(
    "maker,error,words",
    [
        (lambda d: d / "missing.mp4", NotAFileError, "not found"),
        (lambda d: d, NotAFileError, "not a regular file"),
        (lambda d: make_zero_length(d / "zero.mp4"), EmptyVideoError, "empty"),
        (lambda d: make_text_file_as_video(d / "notes.mp4"), NotAVideoError, "not a video"),
        (lambda d: make_audio_only(d / "song.m4a"), NoVideoStreamError, "no video stream"),
    ],
)
def test_bad_inputs_get_typed_errors(video_dir, maker, error, words):
    path = maker(video_dir)
    with pytest.raises(error) as exc:
        probe_video(path)
    assert words in str(exc.value) and str(path) in str(exc.value)


def test_truncated_file_is_reported_as_corrupt(video_dir):
    good = make_video(video_dir / "good.mkv", seconds=4, size=(160, 120))
    bad = make_truncated(good, video_dir / "cut.mkv", keep_fraction=0.3)
    with pytest.raises((CorruptVideoError, EmptyVideoError, NotAVideoError)) as exc:
        info = probe_video(bad)
        list(iter_frames(bad, fps=4, short_side=32, info=info))
    assert "cut.mkv" in str(exc.value)


@pytest.mark.slow
def test_memory_stays_bounded_on_a_long_video(tmp_path):
    # 20 minutes of 640x360 video; decoding it at 2 fps must not hold the frames in memory.
    path = tmp_path / "long.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=640x360:r=5:d=1200",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = 0
    for chunk in iter_frames(path, fps=2, short_side=224, chunk_frames=32):
        n += len(chunk.times)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert n == 2400
    # all 2400 frames at 398x224 would be 640 MB; a chunk is 8.5 MB
    assert grown_mb < 250, grown_mb


def test_truncated_mp4_is_damaged_not_a_non_video(video_dir):
    good = make_video(video_dir / "good.mp4", seconds=3)
    bad = make_truncated(good, video_dir / "cut.mp4", keep_fraction=0.5)
    with pytest.raises(CorruptVideoError, match="damaged or truncated"):
        probe_video(bad)

"""Decoding: every container we promise, exact sample times and pts, upright frames, damaged input, bounded memory."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from videogen import (
    make_damaged_copy,
    make_offset_copy,
    make_split_video,
    make_trimmed_copy,
    make_truncated,
    make_vfr_video,
    make_video,
)

from c2f.errors import CorruptVideoError
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


def edge_colours(frame: np.ndarray) -> dict[str, str]:
    h, w, _ = frame.shape
    edges = {
        "top": frame[: h // 4],
        "bottom": frame[-h // 4 :],
        "left": frame[:, : w // 4],
        "right": frame[:, -w // 4 :],
    }
    return {side: nearest_colour(part) for side, part in edges.items()}


# Stored frame: left half red, right half blue. A player turning it clockwise by 90 puts the left on top.
UPRIGHT = {
    90: {"top": "red", "bottom": "blue"},
    180: {"left": "blue", "right": "red"},
    270: {"top": "blue", "bottom": "red"},
}


@pytest.mark.parametrize("clockwise", [90, 180, 270])
@pytest.mark.parametrize("backend", ["auto", "ffmpeg"])
def test_rotated_phone_video_comes_out_upright(video_dir, clockwise, backend):
    path = make_split_video(video_dir / "rot.mp4", size=(160, 96), rotate=clockwise)
    frames, *_ = decode_all(path, short_side=48, backend=backend)
    assert frames.shape[1:] == ((80, 48, 3) if clockwise in (90, 270) else (48, 80, 3))
    for frame in frames:
        assert UPRIGHT[clockwise].items() <= edge_colours(frame).items()


def test_anamorphic_video_is_resized_to_its_display_aspect(video_dir):
    path = make_video(video_dir / "dvd.mkv", seconds=1, size=(160, 120), display_aspect="16:9")
    for backend in ("decord", "ffmpeg"):
        frames, *_ = decode_all(path, short_side=32, backend=backend)
        assert frames.shape[1:] == (32, 56, 3)  # 213x120 on screen


SEGMENTS = [("red", 1.0), ("lime", 1.0), ("blue", 1.0)]


@pytest.mark.parametrize("backend", ["decord", "ffmpeg"])
def test_timestamps_start_at_the_first_frame_of_an_offset_file(video_dir, backend):
    # Same video with its clock starting at 5 s: the samples and pts are the same as the original's.
    src = make_video(video_dir / "src.mkv", segments=SEGMENTS, fps=10)
    late = make_offset_copy(src, video_dir / "late.mkv", offset=5.0)
    frames, times, pts, _ = decode_all(late, backend=backend)
    assert [nearest_colour(f) for f in frames] == ["red"] * 4 + ["lime"] * 4 + ["blue"] * 4
    np.testing.assert_allclose(pts, np.floor(times * 10 + 1e-6) / 10, atol=1e-3)


@pytest.mark.parametrize("backend", ["auto", "ffmpeg", "decord"])
def test_file_trimmed_without_reencoding_starts_where_the_player_starts(video_dir, backend):
    # One keyframe at 0 s; cutting at 1.5 s with -c copy keeps the frames from 0 s and an edit list
    # that hides the first 1.5 s: the video shows 0.5 s of lime, then 1 s of blue.
    src = make_video(video_dir / "src.mp4", segments=SEGMENTS, fps=10)
    cut = make_trimmed_copy(src, video_dir / "cut.mp4", start=1.5)
    info = probe_video(cut)
    assert info.duration == pytest.approx(1.5, abs=0.05)
    if backend == "decord":  # its frame indices skip the hidden frames but its timestamps do not
        with pytest.raises(CorruptVideoError, match="edit list"):
            decode_all(cut, backend=backend, info=info)
        return
    frames, times, pts, _ = decode_all(cut, backend=backend, info=info)
    assert [nearest_colour(f) for f in frames] == ["lime"] * 2 + ["blue"] * 4
    np.testing.assert_allclose(pts, np.floor(times * 10 + 1e-6) / 10, atol=1e-3)


def test_damaged_middle_does_not_stall_the_pipe_and_keeps_true_timestamps(video_dir):
    # Thousands of decoder error lines on stderr: a pipe nobody drains would stall ffmpeg.
    src = make_video(video_dir / "src.mkv", seconds=30, size=(96, 64), fps=25)
    bad = make_damaged_copy(src, video_dir / "bad.mkv")
    ok = 0
    for backend in ("ffmpeg", "auto"):
        try:
            _, times, pts, _ = decode_all(bad, fps=2, backend=backend)
        except CorruptVideoError as exc:
            assert "bad.mkv" in str(exc)
            continue
        ok += 1
        assert np.all(pts <= times + 1e-6) and np.all(np.diff(pts) >= 0)
        # the undamaged ends are exact
        np.testing.assert_allclose(pts[:8], np.floor(times[:8] * 25 + 1e-6) / 25, atol=1e-3)
        np.testing.assert_allclose(pts[-8:], np.floor(times[-8:] * 25 + 1e-6) / 25, atol=1e-3)
    assert ok  # ffmpeg reads past the damage


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


@pytest.mark.parametrize("backend", ["auto", "decord", "ffmpeg"])
def test_truncated_file_is_reported_as_corrupt(video_dir, backend):
    # Matroska keeps its header: probing works, the frames stop at about 30% of the duration.
    good = make_video(video_dir / "good.mkv", seconds=4, size=(160, 120))
    bad = make_truncated(good, video_dir / "cut.mkv", keep_fraction=0.3)
    info = probe_video(bad)
    with pytest.raises(CorruptVideoError, match="truncated or damaged") as exc:
        list(iter_frames(bad, fps=4, short_side=32, info=info, backend=backend))
    assert "cut.mkv" in str(exc.value)


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in /proc/self/status")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["decord", "ffmpeg"])
def test_memory_stays_bounded_on_a_long_video(tmp_path, backend):
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
    chunks = iter_frames(path, fps=2, short_side=224, chunk_frames=32, backend=backend)
    n = len(next(chunks).times)  # decoder libraries and buffers are set up by now
    # Reset the peak (VmHWM): from here on, growth can only come from frames piling up.
    Path("/proc/self/clear_refs").write_text("5")
    before = _rss_mb("VmRSS")
    for chunk in chunks:
        n += len(chunk.times)
    grown_mb = _rss_mb("VmHWM") - before
    assert n == 2400
    # all 2400 frames at 398x224 would be 640 MB; a chunk is 8.5 MB
    assert grown_mb < 120, grown_mb


def test_raw_decoding_takes_the_frames_the_pipeline_samples(video_dir):
    from c2f.video.layout import sampled_indices

    path = make_video(video_dir / "pattern.mp4", seconds=3, fps=25, size=(160, 120))
    indices, size = sampled_indices(path, fps=4.0, short_side=32)
    _, _, pts, chunks = decode_all(path, fps=4.0, short_side=32, backend="decord")
    assert size == (42, 32) and chunks[0].frames.shape[1:3] == (32, 42)
    np.testing.assert_allclose(pts, indices / 25, atol=1e-3)  # frame i shown at i / 25 s


def test_decode_layout_candidates_split_the_core_budget():
    from c2f.video.layout import layout_candidates

    def pairs(budget, most):
        return [(c["workers"], c["threads"]) for c in layout_candidates(budget, most)]

    assert pairs(16, 24) == [(16, 1), (8, 2), (4, 4), (2, 8), (1, 16)]
    assert pairs(16, 2) == [(2, 1), (2, 2), (2, 4), (2, 8), (1, 16)]  # fewer videos than cores
    assert pairs(1, 5) == [(1, 1)]


def test_decode_layout_is_measured_once_and_can_be_pinned(video_dir, monkeypatch, tmp_path):
    from c2f import tuning
    from c2f.video.layout import DecodeLayout, choose_layout

    monkeypatch.setenv("C2F_TUNING_CACHE", str(tmp_path / "tuning.json"))
    monkeypatch.delenv("C2F_DECODE_THREADS", raising=False)
    tuning.forget()
    path = make_video(video_dir / "pattern.mp4", seconds=3, fps=25, size=(160, 120))
    layout = choose_layout(path, fps=4.0, short_side=32, budget=2, max_workers=4)
    assert layout in (DecodeLayout(2, 1), DecodeLayout(1, 2))
    (choice,) = [c for c in tuning.choices_made() if c.task == "decode-layout"]
    assert choice.source == "measured" and set(choice.timings_ms) == {"workers=2,threads=1", "workers=1,threads=2"}
    assert all(ms is not None and ms > 0 for ms in choice.timings_ms.values())
    tuning.forget()  # a new process: read from the cache, nothing measured
    assert choose_layout(path, fps=4.0, short_side=32, budget=2, max_workers=4) == layout
    assert [c.source for c in tuning.choices_made() if c.task == "decode-layout"] == ["cache"]
    monkeypatch.setenv("C2F_TUNE_DECODE_LAYOUT", '{"workers": 1, "threads": 3}')
    assert choose_layout(path, fps=4.0, short_side=32, budget=2, max_workers=4) == DecodeLayout(1, 3)
    monkeypatch.setenv("C2F_DECODE_THREADS", "2")  # threads pinned: as many workers as the budget allows
    assert choose_layout(path, fps=4.0, short_side=32, budget=4, max_workers=4) == DecodeLayout(2, 2)
    tuning.forget()

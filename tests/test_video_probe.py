"""Probing: what a file is (size, rate, rotation, start, aspect) and a typed, named error when it is unusable."""

from __future__ import annotations

import pytest
from videogen import (
    make_audio_only,
    make_image,
    make_offset_copy,
    make_split_video,
    make_text_file_as_video,
    make_truncated,
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
from c2f.video import probe_video

# container -> (codec ffprobe names, a word of its format name)
EXPECTED = {
    "mp4": ("h264", "mp4"),
    "mkv": ("h264", "matroska"),
    "mov": ("h264", "mov"),
    "webm": ("vp9", "webm"),
    "avi": ("mpeg4", "avi"),
}


@pytest.mark.parametrize("ext", sorted(EXPECTED))
def test_probe_reports_every_container(video_dir, ext):
    path = make_video(video_dir / f"clip.{ext}", seconds=2.0, size=(160, 120), fps=25, audio=ext != "avi")
    info = probe_video(path)
    codec, container_word = EXPECTED[ext]
    assert info.path == str(path)
    assert (info.codec, info.width, info.height, info.rotation) == (codec, 160, 120, 0)
    assert container_word in info.container
    assert info.duration == pytest.approx(2.0, abs=0.05)
    assert info.fps == pytest.approx(25.0)
    assert abs(info.num_frames - 50) <= 1
    assert info.has_audio == (ext != "avi")
    assert info.start_time == pytest.approx(0.0, abs=0.05)


@pytest.mark.parametrize("clockwise", [90, 180, 270])
def test_rotation_is_the_clockwise_turn_and_size_is_the_display_size(video_dir, clockwise):
    info = probe_video(make_split_video(video_dir / "phone.mp4", size=(160, 96), rotate=clockwise))
    assert info.rotation == clockwise
    assert (info.width, info.height) == ((96, 160) if clockwise in (90, 270) else (160, 96))


def test_anamorphic_video_reports_its_display_width(video_dir):
    # 160x120 stored, shown at 16:9 (pixels 4:3 wide) -> 213x120 on screen
    info = probe_video(make_video(video_dir / "dvd.mp4", seconds=1, size=(160, 120), display_aspect="16:9"))
    assert (info.width, info.height) == (213, 120)


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_offset_timestamps_give_the_length_not_the_end_time(video_dir, ext):
    # Matroska stores the track's end timestamp (offset + length) as its DURATION tag.
    src = make_video(video_dir / f"src.{ext}", seconds=2.0, audio=True)
    info = probe_video(make_offset_copy(src, video_dir / f"late.{ext}", offset=3.0))
    assert info.duration == pytest.approx(2.0, abs=0.05)
    if ext == "mkv":  # mp4 edit lists hide the offset from the stream's own clock
        assert info.start_time == pytest.approx(3.0, abs=0.05)


@pytest.mark.parametrize(
    "maker,error,words",
    [
        (lambda d: d / "missing.mp4", NotAFileError, "not found"),
        (lambda d: d, NotAFileError, "not a regular file"),
        (lambda d: make_zero_length(d / "zero.mp4"), EmptyVideoError, "empty"),
        (lambda d: make_text_file_as_video(d / "notes.mp4"), NotAVideoError, "not a video"),
        (lambda d: make_audio_only(d / "song.m4a"), NoVideoStreamError, "no video stream"),
        (lambda d: make_image(d / "photo.png"), NotAVideoError, "still image"),
        (
            lambda d: make_image(d / "photo.jpg").rename(d / "photo.mp4"),  # renamed to look like a video
            NotAVideoError,
            "still image",
        ),
    ],
)
def test_bad_inputs_get_typed_errors_naming_the_file(video_dir, maker, error, words):
    path = maker(video_dir)
    with pytest.raises(error) as exc:
        probe_video(path)
    assert words in str(exc.value) and str(path) in str(exc.value)
    assert exc.value.path == str(path)


def test_truncated_mp4_is_damaged_not_a_non_video(video_dir):
    # The moov atom is written last: cut in half, ffprobe rejects it, but it is a damaged mp4.
    good = make_video(video_dir / "good.mp4", seconds=3)
    bad = make_truncated(good, video_dir / "cut.mp4", keep_fraction=0.5)
    with pytest.raises(CorruptVideoError, match="damaged or truncated") as exc:
        probe_video(bad)
    assert "cut.mp4" in str(exc.value)

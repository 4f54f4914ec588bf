"""The one ffmpeg pipe reader (c2f/video/pipe.py) and its three users: decoding, the `value`
extraction and audio. A stream whose decoding errors fill many pipes (megabytes of log) must go
through each of them, or fail with one clear error, never hang; a silent ffmpeg is ended after the
no-progress timeout; no ffmpeg is left behind, not even as a zombie."""

from __future__ import annotations

import math
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from videogen import make_error_flood_ts, make_jumping_ts, make_repeated_timestamps_mkv, make_video

from c2f.errors import CorruptVideoError
from c2f.features import get_preset
from c2f.features.extract import extract_features
from c2f.speech.audio import SAMPLE_RATE, iter_audio, read_audio
from c2f.video import iter_frames, probe_video
from c2f.video.pipe import TAIL_BYTES, FfmpegPipe, frame_limit
from c2f.video.tools import ffmpeg_exe

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="children are read from /proc")

SECONDS = 60.0


def ffmpeg_children() -> list[str]:
    """This process's ffmpeg children, running or zombie ("pid state")."""
    me = str(os.getpid())
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        state, ppid = text[text.rindex(")") + 2 :].split()[:2]
        if ppid == me and "ffmpeg" in name:
            found.append(f"{stat.parent.name} {state}")
    return found


@pytest.fixture(scope="module")
def flood(tmp_path_factory) -> Path:
    return make_error_flood_ts(tmp_path_factory.mktemp("flood") / "flood.ts", seconds=SECONDS)


def without_addresses(log: str) -> str:
    return re.sub(r"@ 0x[0-9a-f]+", "@ 0x", log)


def video_command(path: Path) -> list[str]:
    return [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-threads", "1", "-i", str(path),
            "-map", "0:v:0", "-vf", "scale=32:24", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"]  # fmt: skip


@pytest.mark.timeout(120)
def test_pipe_reads_everything_while_ffmpeg_logs_megabytes(flood):
    cmd = video_command(flood)
    reference = subprocess.run(cmd, capture_output=True, timeout=60)  # communicate() drains both pipes
    assert len(reference.stderr) > 1_000_000  # the log alone would fill the pipe 15 times
    with FfmpegPipe(cmd, str(flood)) as pipe:
        out = bytearray()
        while block := pipe.read(32 * 24 * 3 * 10):
            out += block
        assert pipe.wait() == reference.returncode
        assert pipe.log_bytes > 1_000_000
        tail = pipe.tail()
        assert 0 < len(tail.encode()) <= TAIL_BYTES
        # the end of the log, whole lines (the decoders' addresses differ between the two runs)
        assert without_addresses(reference.stderr.decode(errors="replace")).endswith(without_addresses(tail))
        assert pipe.last_line() == tail.strip().splitlines()[-1]
    assert bytes(out) == reference.stdout
    assert ffmpeg_children() == []


@pytest.mark.timeout(120)
def test_decoding_a_flooding_stream_finishes_or_fails_cleanly(flood):
    info = probe_video(flood)
    # This stream decodes (with errors); a stream that cannot would raise CorruptVideoError, as the
    # stall test shows. Either way, within the timeout.
    chunks = list(iter_frames(flood, fps=2, short_side=32, info=info, backend="ffmpeg", timeout_s=30))
    times = np.concatenate([c.times for c in chunks])
    assert len(times) == math.ceil(info.duration * 2 - 1e-9)
    assert all(c.frames.shape[1:] == (32, 42, 3) for c in chunks)
    assert ffmpeg_children() == []


@pytest.mark.timeout(180)
def test_value_extraction_of_a_flooding_stream_finishes_or_fails_cleanly(flood):
    feats = extract_features(flood, get_preset("tiny-value"), device="cpu")
    # one clip per 1.5 s (the damage costs at most a few frames at the ends)
    assert abs(len(feats.features) - SECONDS / 1.5) <= 2
    assert np.isfinite(feats.features).all()
    assert ffmpeg_children() == []


@pytest.mark.timeout(120)
def test_audio_of_a_flooding_stream_finishes_or_fails_cleanly(flood):
    samples = read_audio(flood)
    # what the decoder kept of the damaged packets
    assert SAMPLE_RATE < len(samples) <= (SECONDS + 1) * SAMPLE_RATE
    assert ffmpeg_children() == []


@pytest.mark.timeout(60)
def test_silent_ffmpeg_is_ended_after_the_no_progress_timeout(tmp_path):
    fifo = tmp_path / "never.ts"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)  # held open and never written: ffmpeg waits for input for ever
    try:
        started = time.monotonic()
        with (
            FfmpegPipe(video_command(fifo), str(fifo), stall_s=1.0) as pipe,
            pytest.raises(CorruptVideoError, match=r"never\.ts: ffmpeg made no progress for 1 s"),
        ):
            pipe.read(1024)
        assert time.monotonic() - started < 30  # not the 60 s of the test's own timeout
    finally:
        os.close(writer)
    assert ffmpeg_children() == []


def test_a_caller_that_stops_early_leaves_no_ffmpeg(tmp_path):
    video = make_video(tmp_path / "a.mp4", seconds=4.0, audio=True)
    chunks = iter_audio(video, chunk_seconds=1.0)
    first = next(chunks)
    assert len(first) == SAMPLE_RATE
    first[0] = 1.0  # chunks are writable arrays
    assert len(ffmpeg_children()) == 1  # still decoding the rest
    chunks.close()
    assert ffmpeg_children() == []


def test_a_failing_ffmpeg_gives_its_last_error_line(tmp_path):
    missing = tmp_path / "missing.mp4"
    with FfmpegPipe(
        [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(missing), "-f", "null", "-"], str(missing)
    ) as pipe:
        assert pipe.read(100) == b""
        assert pipe.wait() != 0
        assert "No such file or directory" in pipe.last_line()
    pipe.close()  # closing twice is harmless
    assert ffmpeg_children() == []


# --- output bounded by the probed duration --------------------------------------------------------
@pytest.fixture(scope="module")
def jumping(tmp_path_factory) -> Path:
    return make_jumping_ts(tmp_path_factory.mktemp("jump") / "jumping.ts")


JUMP_LINE = r"jumping\.ts: ffmpeg gave more than \d+ {units}, more than 2\.0 s of it can hold \(timestamps that jump\?\)"


@pytest.mark.timeout(60)
def test_value_extraction_refuses_a_ts_whose_timestamps_jump(jumping, tmp_path, capsys):
    # before: the fps filters filled the ~990 s of jumps with copies (29,790 frames at 30 fps)
    with pytest.raises(CorruptVideoError, match=JUMP_LINE.format(units=r"frames at 0\.6667 fps")):
        extract_features(jumping, get_preset("tiny-value"), device="cpu")
    assert ffmpeg_children() == []
    from c2f import cli

    assert cli.main(["extract", str(jumping), "--out", str(tmp_path / "out"), "--preset", "tiny-value"]) == 1
    assert re.search("skipped .*" + JUMP_LINE.format(units=r"frames at [\d.]+ fps"), capsys.readouterr().out)


def test_the_30_fps_stream_stops_where_the_duration_ends(jumping):
    from c2f.features.value import ffmpeg_command, iter_ffmpeg_frames, value_probe

    duration = probe_video(jumping).duration
    cmd = ffmpeg_command(jumping, 30, value_probe(jumping), 32)
    limit = frame_limit(duration, 30, 32 * 32 * 3)
    read = 0
    with pytest.raises(CorruptVideoError, match=JUMP_LINE.format(units="frames at 30 fps")):
        for frames in iter_ffmpeg_frames(cmd, 32, 90, str(jumping), limit):
            read += len(frames)
    allowed = math.ceil((1.25 * duration + 10) * 30)
    assert limit.max_bytes == allowed * 32 * 32 * 3 and read <= allowed  # of 29,790: memory and time bounded
    assert ffmpeg_children() == []


def test_audio_past_the_probed_duration_is_refused(jumping):
    heard = 0
    with pytest.raises(CorruptVideoError, match=r"more than \d+ samples at 16 kHz, more than 2\.0 s"):
        for chunk in iter_audio(jumping, chunk_seconds=1.0):
            heard += len(chunk)
    assert heard <= math.ceil((1.25 * 2.048 + 10) * SAMPLE_RATE)  # of the 32 s ffmpeg decodes
    assert ffmpeg_children() == []


def test_decoding_refuses_a_flood_of_frames_with_one_timestamp(tmp_path):
    video = make_repeated_timestamps_mkv(tmp_path / "same.mkv", copies=200)  # 5,000 frames in 1 s
    # before: all 3,800 frames up to the last sample time were read, and 2 samples returned
    with pytest.raises(CorruptVideoError, match=r"more than 282 frames at 25 fps, more than 1\.0 s"):
        list(iter_frames(video, fps=2, short_side=32, backend="ffmpeg"))
    assert ffmpeg_children() == []

"""Speech to subtitles with the tiny random Whisper: audio reading, windows, timestamps, .srt, CLI,
and the offline message for missing weights. The tiny model's words are random: never asserted."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from speechgen import make_long_audio, make_speech_video
from videogen import make_video

from c2f.cli import main
from c2f.errors import MissingWeightsError
from c2f.features.subtitles import read_subtitles
from c2f.speech.audio import SAMPLE_RATE, iter_audio, probe_audio, read_audio
from c2f.speech.srt import format_srt, srt_time
from c2f.speech.tiny import TINY_LANGUAGES
from c2f.speech.transcript import Segment
from c2f.speech.whisper import (
    STRIDE_SECONDS,
    WINDOW_SECONDS,
    WhisperTranscriber,
    Window,
    iter_windows,
    parse_timestamped,
)


@pytest.fixture(scope="module")
def tiny() -> WhisperTranscriber:
    return WhisperTranscriber("tiny-test", device="cpu")


@pytest.fixture(scope="module")
def speech_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[float, float, str]]]:
    path = tmp_path_factory.mktemp("speech") / "talk.mp4"
    return path, make_speech_video(path)


# --- audio -------------------------------------------------------------------------------------
def test_audio_is_16k_mono_and_as_long_as_the_stream(speech_video):
    path, spans = speech_video
    info = probe_audio(path)
    samples = read_audio(path)
    assert info.has_audio and samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) / SAMPLE_RATE - info.duration) < 0.1
    # the spoken sentences are where espeak put them: louder inside than in the silence before
    rms = lambda a, b: float(np.sqrt(np.mean(samples[round(a * SAMPLE_RATE) : round(b * SAMPLE_RATE)] ** 2)))  # noqa: E731
    assert rms(spans[0][0], spans[0][1]) > 10 * rms(0.05, spans[0][0] - 0.1)


def test_video_without_audio_has_no_samples_and_no_transcript(tmp_path, tiny):
    silent = make_video(tmp_path / "silent.mp4", seconds=2.0)
    assert not probe_audio(silent).has_audio
    assert list(iter_audio(silent)) == [] and len(read_audio(silent)) == 0
    transcript = tiny.transcribe_file(silent)
    assert transcript.segments == [] and transcript.language is None and "no audio stream" in transcript.notes


def test_long_audio_is_read_in_chunks_with_bounded_memory(tmp_path):
    path = make_long_audio(tmp_path / "long.wav", seconds=600.0)  # 10 min = 38 MB of float32
    tracemalloc.start()
    try:
        total, biggest = 0, 0
        for window in iter_windows(iter_audio(path, chunk_seconds=20.0)):
            biggest = max(biggest, len(window.samples))
            total = max(total, round(window.end * SAMPLE_RATE))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert abs(total / SAMPLE_RATE - 600.0) < 0.5  # all of it was read
    assert biggest == WINDOW_SECONDS * SAMPLE_RATE
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB for 10 min of audio (38 MiB in all)"


# --- windows and timestamps ----------------------------------------------------------------------
@pytest.mark.parametrize("seconds", [0.5, 12.0, 30.0, 41.0, 50.0, 75.3, 130.0])
def test_windows_cover_the_audio_and_own_every_instant_once(seconds):
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(round(seconds * SAMPLE_RATE)).astype(np.float32)
    chunks = [audio[i : i + 7777] for i in range(0, len(audio), 7777)]  # odd chunk sizes
    windows = list(iter_windows(chunks))
    assert windows[0].first and windows[0].start == 0 and windows[-1].last
    assert sum(w.last for w in windows) == 1 and sum(w.first for w in windows) == 1
    for w in windows:  # each window is the audio at its place, at most 30 s
        a = round(w.start * SAMPLE_RATE)
        assert len(w.samples) <= WINDOW_SECONDS * SAMPLE_RATE
        np.testing.assert_array_equal(w.samples, audio[a : a + len(w.samples)])
    assert windows[-1].end == pytest.approx(seconds, abs=1 / SAMPLE_RATE)
    for t in np.arange(0.0, seconds, 0.25):  # each instant: owned by exactly one window that heard it
        owners = [w for w in windows if w.owns(t)]
        assert len(owners) == 1 and owners[0].start <= t < owners[0].end + 1e-9
    steps = np.diff([w.start for w in windows])
    assert np.all(steps <= WINDOW_SECONDS - 2 * STRIDE_SECONDS + 1e-9)


def test_parse_timestamped_pairs_text_between_timestamps():
    eot, ts = 100, 200  # ids >= 200 are timestamps (0.02 s each), 100..199 other special tokens
    decode = lambda ids: " ".join(map(str, ids))  # noqa: E731
    ids = [150, 151, 152, ts + 0, 5, 6, ts + 50, ts + 50, 7, ts + 100, ts + 110, ts + 120, 8, 9, eot]
    segs = parse_timestamped(ids, eot, ts, decode)
    assert segs == [Segment(0.0, 1.0, "5 6"), Segment(1.0, 2.0, "7"), Segment(2.4, float("inf"), "8 9")]


def test_transcript_timestamps_lie_inside_the_audio(tiny, speech_video):
    path, _ = speech_video
    duration = probe_audio(path).duration
    transcript = tiny.transcribe_file(path)
    assert transcript.language in TINY_LANGUAGES  # detected (the words themselves are random)
    assert "TINY TEST MODE" in transcript.model and transcript.machine_made
    assert abs(transcript.duration - duration) < 0.1
    for seg in transcript.segments:
        assert 0.0 <= seg.start < seg.end <= transcript.duration + 1e-6
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts)


@pytest.mark.parametrize("batch", [1, 3])  # 1: one window at a time; 3: batches of 3 and a partial one
def test_long_audio_transcript_is_chunked_and_ordered(tmp_path, batch):
    # 95 s: 5 overlapping windows, few tokens each; the stream is windowed, never loaded whole.
    path = make_long_audio(tmp_path / "long.wav", seconds=95.0)
    transcriber = WhisperTranscriber("tiny-test", language="en", device="cpu", max_new_tokens=4, batch_size=batch)
    seen = []
    transcript = transcriber.transcribe_file(path, progress=lambda done, total: seen.append(done))
    windows = 1 + math.ceil((transcript.duration - WINDOW_SECONDS) / (WINDOW_SECONDS - 2 * STRIDE_SECONDS))
    assert windows == 5 and len(seen) == math.ceil(windows / batch)  # one generate call a batch
    assert seen[-1] == pytest.approx(95.0, abs=0.1)
    assert transcript.language == "en"
    for a, b in zip(transcript.segments, transcript.segments[1:], strict=False):
        assert a.start <= b.start
    assert all(0.0 <= s.start < s.end <= transcript.duration + 1e-6 for s in transcript.segments)


def test_segment_past_a_short_last_window_is_cut_to_the_audio():
    from c2f.speech.whisper import _place

    window = Window(start=40.0, samples=np.zeros(SAMPLE_RATE * 3, np.float32), first=False, last=True)
    assert _place(Segment(1.0, 29.0, "x"), window) == Segment(41.0, 43.0, "x")
    assert _place(Segment(5.0, float("inf"), "x"), window) is None  # starts after the audio ends
    assert _place(Segment(0.5, 0.5, "x"), window) == Segment(40.5, 40.52, "x")  # zero length: one tick


# --- .srt and the CLI ----------------------------------------------------------------------------
def test_srt_round_trip():
    segs = [Segment(0.2, 1.5, "hello  there"), Segment(61.0004, 3725.25, "line\nbreak"), Segment(4.0, 5.0, " ")]
    text = format_srt(segs)
    assert text.startswith("1\n00:00:00,200 --> 00:00:01,500\nhello there\n")
    assert srt_time(3725.25) == "01:02:05,250"
    assert "3\n" not in text  # the blank segment is no cue


def test_cli_transcribe_writes_a_standard_srt(tmp_path, speech_video, tiny, capsys):
    path, _ = speech_video
    out = tmp_path / "subs" / "talk.srt"
    assert main(["transcribe", str(path), "--out", str(out), "--whisper-model", "tiny-test"]) == 0
    printed = capsys.readouterr().out
    assert "TINY TEST MODE" in printed and f"wrote {out}" in printed
    cues = read_subtitles(out)  # the project's own strict parser accepts it
    transcript = tiny.transcribe_file(path)  # the same seeded model, so the same segments
    assert [(c.start, c.end) for c in cues] == [(s.start, s.end) for s in transcript.subtitles()]


def test_cli_transcribe_video_without_audio(tmp_path, capsys):
    silent = make_video(tmp_path / "silent.mp4", seconds=1.5)
    out = tmp_path / "silent.srt"
    assert main(["transcribe", str(silent), "--out", str(out), "--whisper-model", "tiny-test"]) == 0
    assert "no audio stream" in capsys.readouterr().out and out.read_text() == ""


def test_missing_whisper_weights_name_each_file_and_the_folder(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants

    monkeypatch.setenv("C2F_CHECKPOINTS", str(tmp_path / "ckpt"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    folder = tmp_path / "ckpt" / "whisper" / "base"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")  # a folder the user started filling
    with pytest.raises(MissingWeightsError) as err:
        WhisperTranscriber("base")
    message = str(err.value)
    for name in ("generation_config.json", "model.safetensors", "preprocessor_config.json", "tokenizer.json"):
        assert name in message.split("Put it")[0]
    assert "'config.json" not in message and str(folder) in message and "openai/whisper-base" in message
    assert main(["transcribe", str(tmp_path / "x.mp4"), "--out", str(tmp_path / "x.srt")]) == 2
    assert "error: missing weights for Whisper base" in capsys.readouterr().err


def test_complete_checkpoint_folder_is_used_as_is(tmp_path, monkeypatch):
    from c2f.weights import MODEL_FOLDERS, resolve_model_folder

    monkeypatch.setenv("C2F_CHECKPOINTS", str(tmp_path))
    folder = tmp_path / "sentence" / "all-MiniLM-L6-v2"
    folder.mkdir(parents=True)
    for name in MODEL_FOLDERS["sentence:all-MiniLM-L6-v2"].files:
        (folder / name).write_text("{}")
    assert resolve_model_folder("sentence:all-MiniLM-L6-v2") == folder

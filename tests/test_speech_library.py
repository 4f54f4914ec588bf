"""`index --transcribe`: machine subtitles for videos without a sidecar, stored with the features
and marked with model and language; sidecars win; videos without audio; resumable per video."""

from __future__ import annotations

from pathlib import Path

import pytest
from speechgen import make_speech_video
from videogen import make_video, write_srt

from c2f.cli import main
from c2f.features import get_preset, load_features
from c2f.features.subtitles import read_subtitles
from c2f.library import Library
from c2f.library.ingest import transcript_path
from c2f.speech.fusion import clip_owners
from c2f.speech.tiny import TINY_LANGUAGES
from c2f.speech.transcript import Segment, Transcript, load_transcript, save_transcript
from c2f.speech.whisper import WhisperTranscriber

TINY = get_preset("tiny-clip-only")
SIDECAR = [(0.5, 2.0, "a sidecar line"), (2.5, 4.0, "another sidecar line")]


class CountingTranscriber(WhisperTranscriber):
    """The tiny Whisper, noting the files it transcribes (the library's copies, named by video id)."""

    def __init__(self) -> None:
        super().__init__("tiny-test", device="cpu")
        self.files: list[str] = []

    def transcribe_file(self, path, progress=None):
        self.files.append(Path(path).stem)
        return super().transcribe_file(path, progress)


@pytest.fixture(scope="module")
def transcriber() -> CountingTranscriber:
    return CountingTranscriber()


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    make_speech_video(folder / "talk.mp4")
    make_speech_video(folder / "subbed.mp4", sentences=("the dog runs across the kitchen",))
    write_srt(folder / "subbed.srt", SIDECAR)
    make_video(folder / "silent.mp4", seconds=3.0)
    return folder


@pytest.fixture(scope="module")
def library(tmp_path_factory, videos, transcriber) -> Library:
    lib = Library(tmp_path_factory.mktemp("lib"), settings=TINY)
    report = lib.add(videos, transcriber=transcriber)
    assert report.ok and len(report.added) == 3
    return lib


def _feats(library: Library, name: str):
    rec = next(r for r in library.list() if r.name == name)
    return rec, load_features(library.feature_path(rec.video_id))


def test_video_without_subtitles_gets_the_transcript_marked_as_machine_made(library, transcriber):
    rec, feats = _feats(library, "talk.mp4")
    saved = load_transcript(transcript_path(library.files, rec.video_id))
    assert feats.subtitles == saved.subtitles()  # what the features (and the learned model) read
    assert feats.subtitle_source == {
        "kind": "transcript",
        "machine_made": True,
        "model": transcriber.label,
        "language": saved.language,
    }
    assert saved.language in TINY_LANGUAGES and "TINY TEST MODE" in saved.model
    assert rec.has_subtitles == bool(feats.subtitles)
    for cue in feats.subtitles:
        assert 0.0 <= cue.start < cue.end <= feats.video.duration + 0.1


def test_machine_subtitles_are_aligned_to_the_clips_they_overlap(library):
    _, feats = _feats(library, "talk.mp4")
    owners = clip_owners(feats.subtitles, feats.num_clips, feats.settings.clip_seconds)
    for clip, cue in enumerate(owners):
        if cue >= 0:  # HERO's rule gives a clip only to a cue that overlaps it
            a, b = feats.clip_times[clip]
            assert feats.subtitles[cue].start < b and feats.subtitles[cue].end > a


def test_sidecar_always_wins(library, transcriber, videos):
    rec, feats = _feats(library, "subbed.mp4")
    assert feats.subtitles == read_subtitles(videos / "subbed.srt")
    assert feats.subtitle_source is None
    talk, _ = _feats(library, "talk.mp4")
    assert talk.video_id in transcriber.files and rec.video_id not in transcriber.files
    assert not transcript_path(library.files, rec.video_id).exists()


def test_video_without_audio_is_indexed_without_subtitles(library):
    rec, feats = _feats(library, "silent.mp4")
    assert rec.status == "indexed" and feats.subtitles == [] and not rec.has_subtitles
    saved = load_transcript(transcript_path(library.files, rec.video_id))
    assert saved.notes == ["no audio stream"] and feats.subtitle_source["language"] is None


def test_saved_transcript_is_reused_and_another_models_is_not(tmp_path, videos, transcriber):
    lib = Library(tmp_path / "lib", settings=TINY)
    talk = videos / "talk.mp4"
    from c2f.features.extract import file_sha256

    video_id = file_sha256(talk)[:12]
    mine = Transcript([Segment(0.5, 1.5, "words from an earlier run")], transcriber.label, "fr", 10.8)
    save_transcript(mine, transcript_path(lib.files, video_id))  # as a killed run leaves it
    before = len(transcriber.files)
    assert lib.add(talk, transcriber=transcriber).ok
    assert len(transcriber.files) == before  # not transcribed again
    assert load_features(lib.feature_path(video_id)).subtitles == mine.subtitles()

    lib.remove(video_id)
    assert not transcript_path(lib.files, video_id).exists()  # removed with the video
    other = Transcript([Segment(0.5, 1.5, "another model")], "whisper-base", "en", 10.8)
    save_transcript(other, transcript_path(lib.files, video_id))
    assert lib.add(talk, transcriber=transcriber).ok
    assert transcriber.files[-1] == video_id  # another model's transcript is made again
    assert load_transcript(transcript_path(lib.files, video_id)).model == transcriber.label


def test_cli_index_transcribe(tmp_path, videos, capsys):
    lib = tmp_path / "lib"
    assert main(["index", str(videos / "talk.mp4"), "--library", str(lib), "--mode", "tiny", "--transcribe"]) == 0
    out = capsys.readouterr().out
    assert "transcribing speech with whisper-tiny-test (TINY TEST MODE" in out and "1 added" in out
    assert main(["index", str(videos / "silent.mp4"), "--library", str(lib), "--whisper-model", "tiny-test"]) == 2
    assert "--whisper-model and --language go with --transcribe" in capsys.readouterr().err

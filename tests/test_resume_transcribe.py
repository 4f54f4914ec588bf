"""`c2f library resume` after an interrupted `index --transcribe`: the run's speech options are kept
in the catalog, so the pending videos get machine subtitles as the finished ones did; the options
given to resume win (`--no-transcribe`, `--transcribe --whisper-model`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from speechgen import make_speech_video

from c2f.cli import main
from c2f.features import get_preset, load_features
from c2f.library import Library
from c2f.library.ingest import RunSpeech, recorded_run_speech, transcript_path
from c2f.speech.whisper import WhisperTranscriber

TINY = get_preset("tiny-clip-only")


@pytest.fixture(scope="module")
def transcriber() -> WhisperTranscriber:
    return WhisperTranscriber("tiny-test", device="cpu")


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("videos")
    first = make_speech_video(folder / "first.mp4", sentences=("she hands him the keys to the car",))
    second = make_speech_video(folder / "second.mp4", sentences=("the dog runs across the kitchen",))
    assert first and second
    return [folder / "first.mp4", folder / "second.mp4"]


def interrupted_add(root: Path, videos: list[Path], transcriber: WhisperTranscriber | None) -> Library:
    """An add killed once the second video's row exists (Ctrl-C there): first indexed, second pending."""

    def progress(name: str, video_fraction: float, overall: float) -> None:
        if name == videos[1].name:
            raise KeyboardInterrupt

    lib = Library(root, settings=TINY)
    with pytest.raises(KeyboardInterrupt):
        lib.add(videos, transcriber=transcriber, progress=progress)
    assert {r.name: r.status for r in lib.list()} == {"first.mp4": "indexed", "second.mp4": "pending"}
    return lib


def source_of(root: Path, name: str) -> dict | None:
    lib = Library(root)
    rec = next(r for r in lib.list() if r.name == name)
    assert rec.status == "indexed"
    return load_features(lib.feature_path(rec.video_id)).subtitle_source


def test_resume_transcribes_as_the_interrupted_run(tmp_path, videos, capsys):
    german = WhisperTranscriber("tiny-test", language="de", device="cpu")  # model and language recorded
    lib = interrupted_add(tmp_path / "lib", videos, german)
    assert recorded_run_speech(lib.catalog) == RunSpeech("tiny-test", "de")
    assert main(["library", "resume", "--library", str(lib.root)]) == 0
    out = capsys.readouterr().out
    assert f"transcribing speech with {german.label} (as the interrupted run)" in out
    assert "1 resumed, 0 failed" in out
    expected = {"kind": "transcript", "machine_made": True, "model": german.label, "language": "de"}
    assert source_of(lib.root, "first.mp4") == source_of(lib.root, "second.mp4") == expected
    rec = next(r for r in Library(lib.root).list() if r.name == "second.mp4")
    assert transcript_path(lib.files, rec.video_id).is_file()


def test_no_transcribe_wins_over_the_record(tmp_path, videos, transcriber, capsys):
    lib = interrupted_add(tmp_path / "lib", videos, transcriber)
    assert main(["library", "resume", "--library", str(lib.root), "--no-transcribe"]) == 0
    assert "transcribing" not in capsys.readouterr().out
    assert source_of(lib.root, "second.mp4") is None  # no subtitles from speech
    assert recorded_run_speech(lib.catalog) is None  # the resume's own options are the record now


def test_transcribe_given_to_resume_of_a_run_without_it(tmp_path, videos, transcriber, capsys):
    lib = interrupted_add(tmp_path / "lib", videos, None)
    assert recorded_run_speech(lib.catalog) is None
    assert main(["library", "resume", "--library", str(lib.root), "--whisper-model", "tiny-test"]) == 2
    assert "--whisper-model and --language go with --transcribe" in capsys.readouterr().err
    args = ["library", "resume", "--library", str(lib.root), "--transcribe", "--whisper-model", "tiny-test"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"transcribing speech with {transcriber.label}\n" in out and "1 resumed" in out
    assert source_of(lib.root, "first.mp4") is None  # indexed before, without transcription
    assert source_of(lib.root, "second.mp4")["model"] == transcriber.label
    assert recorded_run_speech(lib.catalog) == RunSpeech("tiny-test", None)


def test_record_reads_back_and_a_damaged_one_is_none(tmp_path):
    from c2f.library.ingest import RUN_SPEECH_KEY

    lib = Library(tmp_path / "lib", settings=TINY)
    lib.catalog.set_meta(RUN_SPEECH_KEY, '{"whisper_model": "tiny-test", "language": "fr"}')
    assert recorded_run_speech(lib.catalog) == RunSpeech("tiny-test", "fr")
    lib.catalog.set_meta(RUN_SPEECH_KEY, "{not json")
    assert recorded_run_speech(lib.catalog) is None
    lib.catalog.set_meta(RUN_SPEECH_KEY, '{"model": "tiny-test"}')  # another version's fields
    assert recorded_run_speech(lib.catalog) is None

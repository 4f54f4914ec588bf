"""Adding videos to a library: admit each file (hash, duplicate check, subtitles, copy), extract its
features, commit its catalog row; now and then (and at the end) bring the default index to the
catalog and save it.

A catalog row becomes "indexed" only after its feature file exists, so a killed run loses nothing
but the video it was working on; running `add` again (or `resume`) finishes it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from c2f.errors import C2FError, LibraryError, NotAFileError
from c2f.features import ClipFeatures, Subtitle, save_features
from c2f.library.catalog import VideoRecord
from c2f.library.lease import writer_lease
from c2f.video.layout import check_decode_environment

if TYPE_CHECKING:
    from c2f.features.parallel import Extractor
    from c2f.library.catalog import Catalog
    from c2f.library.library import Library
    from c2f.library.storage import LibraryFiles
    from c2f.speech.transcript import Transcript
    from c2f.speech.whisper import WhisperTranscriber

log = logging.getLogger(__name__)

# While adding, bring the default index to the catalog and save it at most this often (and at the
# end): one index write per save, not per video (a Milvus Lite store flushes once per write).
INDEX_SAVE_EVERY_S = 10.0

# progress(video name, fraction of this video done, fraction of the whole run done)
AddProgress = Callable[[str, float, float], None]
SubtitlesArg = str | Path | dict[str, str | Path] | None


@dataclass
class AddReport:
    added: list[VideoRecord] = field(default_factory=list)  # newly indexed (or resumed) videos
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (file name, existing video id)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file name, error message)
    # (file name, what it went without): indexed all the same, e.g. without its unreadable subtitles
    warnings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


RUN_SPEECH_KEY = "run_speech"  # catalog meta: how the latest add/resume run made subtitles from speech


@dataclass(frozen=True)
class RunSpeech:
    """The speech options of the latest add (or resume) run, kept in the catalog so that resuming
    it makes the same subtitles: None for a run without transcription."""

    whisper_model: str  # a name of c2f.speech.models.WHISPER_MODELS
    language: str | None  # None: detected per file


def recorded_run_speech(catalog: Catalog) -> RunSpeech | None:
    """What the latest run recorded (None: no transcription, or a library from before the record)."""
    raw = catalog.get_meta(RUN_SPEECH_KEY)
    try:
        value = json.loads(raw) if raw else None
        return RunSpeech(**value) if isinstance(value, dict) else None
    except (ValueError, TypeError):  # damaged or from another version: as if never recorded
        return None


def _record_run_speech(catalog: Catalog, transcriber: WhisperTranscriber | None) -> None:
    speech = None if transcriber is None else RunSpeech(transcriber.model_name, transcriber.language)
    catalog.set_meta(RUN_SPEECH_KEY, json.dumps(None if speech is None else speech.__dict__))


@dataclass
class _Admitted:
    """A video that passed the checks and is about to be extracted."""

    name: str  # the user's file name
    src: Path  # the user's file
    stored: Path  # the file the library plays (a copy, or the original)
    content_hash: str
    is_copy: bool
    subtitles: list[Subtitle]
    note: str | None  # what it goes without (stored in the catalog, reported as a warning)
    existing: VideoRecord | None  # its row when an earlier run left it pending or failed

    @property
    def video_id(self) -> str:
        return self.content_hash[:12]


def subtitles_file(src: Path, subtitles: SubtitlesArg, n_files: int) -> Path | None:
    """The subtitle file of one video: given for it, or its sidecar (movie.srt next to movie.mp4)."""
    from c2f.features.subtitles import find_sidecar_subtitles

    if isinstance(subtitles, dict):
        given = subtitles.get(str(src), subtitles.get(src.name))
        if given is not None:
            return Path(given)
    elif subtitles is not None:
        if n_files != 1:
            raise LibraryError("one subtitle file was given for several videos: pass {video: subtitles}")
        return Path(subtitles)
    return find_sidecar_subtitles(src)


def _read_subtitles(path: Path | None) -> tuple[list[Subtitle], str | None]:
    """The readable cues of a video's subtitle file and what was left out (None: nothing). A
    malformed or unreadable file never costs its video: it is indexed without those cues."""
    from c2f.features.subtitles import read_usable_subtitles

    if path is None:
        return [], None
    subs, problem = read_usable_subtitles(path)
    if problem is None:
        return subs, None
    return subs, problem if subs else f"{problem}; indexed without subtitles"


def _file_sha256(path: Path) -> str:
    from c2f.features.extract import file_sha256

    return file_sha256(path)


class Ingest:
    """One `add` (or `resume`) run over a list of files; the caller holds the library's write lock."""

    def __init__(
        self, library: Library, progress: AddProgress | None, transcriber: WhisperTranscriber | None = None
    ) -> None:
        self.lib = library
        self.progress = progress
        self.transcriber = transcriber  # makes subtitles from speech for videos without any
        self.report = AddReport()
        self.spec = library.default_index
        self.lease = writer_lease(library.files.lock_path)  # a store's pending rows are this run's
        loaded = library.versions.load(self.spec.fingerprint)
        self.indexed = {r.key: r for r in library.catalog.all("indexed")}
        self.index, self.dirty = library.sync_index(
            loaded.index if loaded else None, self.indexed, self.spec.vectors_of, self.spec.fingerprint, self.lease
        )
        self.last_save = time.monotonic()

    def run(
        self,
        files: list[tuple[Path, VideoRecord | None]],
        copy: bool,
        subtitles: SubtitlesArg,
        extractor: Extractor | None = None,
    ) -> AddReport:
        """`extractor` (c2f.features.parallel.make_extractor): many videos at once, decoded by
        worker processes or on Ray; this process stays the only writer of the catalog and index."""
        check_decode_environment()
        if files:  # before any row turns pending: a resume of this run transcribes as it did
            _record_run_speech(self.lib.catalog, self.transcriber)
        if extractor is not None and self.transcriber is None and len(files) > 1:
            return self._run_many(files, copy, subtitles, extractor)
        n = max(len(files), 1)
        for i, (src, resumed) in enumerate(files):
            job = self._admit_or_report(src, resumed, copy, subtitles, len(files))
            if job is None:
                if self.progress:
                    self.progress(resumed.name if resumed else src.name, 1.0, (i + 1) / n)
                continue
            self._index_one(job, i, n)
        return self._finish()

    def _finish(self) -> AddReport:
        if self.dirty:
            self._sync_and_save()
        return self.report

    def _sync_and_save(self) -> None:
        """Add the videos committed since the last save to the index (one write for all), then
        save it. Searches meanwhile find those videos from their feature files (catalog snapshot)."""
        self.index, _ = self.lib.sync_index(
            self.index, self.indexed, self.spec.vectors_of, self.spec.fingerprint, self.lease
        )
        if self.index is not None:
            self.lib.versions.save(self.spec.fingerprint, self.index)
        self.dirty, self.last_save = False, time.monotonic()

    def _admit_or_report(
        self, src: Path, resumed: VideoRecord | None, copy: bool, subtitles: SubtitlesArg, n_files: int
    ) -> _Admitted | None:
        try:
            return self._admit(src, resumed, copy, subtitles, n_files)
        except (OSError, C2FError) as exc:  # unreadable file, disk full: nothing recorded yet
            self.report.failed.append((resumed.name if resumed else src.name, str(exc)))
            return None

    def _run_many(
        self,
        files: list[tuple[Path, VideoRecord | None]],
        copy: bool,
        subtitles: SubtitlesArg,
        extractor: Extractor,
    ) -> AddReport:
        """Admit every file (a pending row each: a killed run resumes them), then commit each
        video as the extractor yields it, in the order they finish."""
        from c2f.features.parallel import VideoJob

        admitted: list[tuple[_Admitted, int]] = []
        for src, resumed in files:
            job = self._admit_or_report(src, resumed, copy, subtitles, len(files))
            if job is not None:
                admitted.append((job, self._begin(job)))
        n, finished = max(len(files), 1), len(files) - len(admitted)
        fractions: dict[int, float] = {}

        def on_progress(index: int, done: float, total: float) -> None:
            if self.progress:
                fractions[index] = done / total if total > 0 else 1.0
                overall = (finished + sum(fractions.values())) / n
                self.progress(admitted[index][0].name, fractions[index], min(overall, 1.0))

        jobs = [VideoJob(job.stored, job.video_id, job.subtitles, job.content_hash) for job, _ in admitted]
        for result in extractor(jobs, self.lib.settings, self.lib.device, on_progress):
            job, key = admitted[result.index]
            fractions.pop(result.index, None)
            finished += 1
            if result.features is None:
                self._fail(job, key, result.error or "failed")
            else:
                self._commit(job, key, result.features, None)
            if self.progress:
                self.progress(job.name, 1.0, finished / n)
        return self._finish()

    def _admit(
        self, src: Path, resumed: VideoRecord | None, copy: bool, subtitles: SubtitlesArg, n_files: int
    ) -> _Admitted | None:
        """The video to extract, or None for a duplicate (reported). Raises for unusable files."""
        name = resumed.name if resumed else src.name
        if not src.is_file():
            raise NotAFileError(str(src), "not found or not a regular file")
        content_hash = resumed.content_hash if resumed else _file_sha256(src)
        rec = self.lib.catalog.by_hash(content_hash)
        if rec is not None and rec.status == "indexed":
            self.report.duplicates.append((name, rec.video_id))
            return None
        if resumed:
            subs, note = _read_subtitles(subtitles_file(Path(resumed.stored_path), None, 1))
            stored, is_copy = Path(resumed.stored_path), resumed.is_copy
        else:
            subs, note = _read_subtitles(subtitles_file(src, subtitles, n_files))
            stored, is_copy = self.lib.files.store_video(src, content_hash[:12], copy), copy
        return _Admitted(name, src, stored, content_hash, is_copy, subs, note, rec)

    def _begin(self, job: _Admitted) -> int:
        """The video's catalog row, pending from now on; its key."""
        catalog = self.lib.catalog
        if job.existing is None:
            return catalog.insert_pending(job.video_id, job.name, job.content_hash, str(job.stored), job.is_copy)
        catalog.reset_pending(job.existing.key, job.name, str(job.stored), job.is_copy)  # killed or failed before
        return job.existing.key

    def _index_one(self, job: _Admitted, i: int, n: int) -> None:
        from c2f.features.extract import extract_features

        key = self._begin(job)
        if self.progress:  # reported once the row exists: an interruption from here on resumes
            self.progress(job.name, 0.0, i / n)

        def on_progress(done: float, total: float) -> None:
            if self.progress:
                f = done / total if total > 0 else 1.0
                self.progress(job.name, f, (i + f) / n)

        try:
            subtitles, source = job.subtitles, None
            if not subtitles and self.transcriber is not None:  # a sidecar with cues always wins
                transcript = self._transcript(job)
                subtitles, source = transcript.subtitles(), transcript.source()
            feats = extract_features(
                job.stored,
                self.lib.settings,
                video_id=job.video_id,
                subtitles=subtitles,
                device=self.lib.device,
                progress=on_progress,
                content_hash=job.content_hash,  # hashed when admitted: a second pass over the file saved
            )
        except Exception as exc:  # any failure is this video's, never the whole run's
            self._fail(job, key, str(exc) if isinstance(exc, C2FError) else f"{type(exc).__name__}: {exc}")
            return
        self._commit(job, key, feats, source)

    def _fail(self, job: _Admitted, key: int, message: str) -> None:
        message = message.replace(str(job.stored), str(job.src))  # name the user's file, not our copy
        self.lib.catalog.mark_failed(key, message)
        if job.is_copy:
            job.stored.unlink(missing_ok=True)
        self.report.failed.append((job.name, message))

    def _commit(self, job: _Admitted, key: int, feats: ClipFeatures, source: dict | None) -> None:
        """Write the video's feature file, mark its row indexed (the index gets it at the next
        save); a failure to write is this video's."""
        catalog = self.lib.catalog
        try:
            feats.video = replace(feats.video, source_name=job.name)
            feats.subtitle_source = source
            save_features(feats, self.lib.files.feature_path(job.video_id))
            catalog.mark_indexed(
                key,
                duration=feats.video.duration,
                fps=feats.video.fps,
                width=feats.video.width,
                height=feats.video.height,
                num_clips=feats.num_clips,
                settings_fingerprint=self.lib.settings.fingerprint(),
                subtitles=[s.__dict__ for s in feats.subtitles],
                note=job.note,
            )
        except Exception as exc:  # any failure is this video's, never the whole run's
            self._fail(job, key, str(exc) if isinstance(exc, C2FError) else f"{type(exc).__name__}: {exc}")
            return
        self.lib.features.put(job.video_id, feats)
        record = catalog.by_key(key)
        assert record is not None  # written above, under the write lock
        self.indexed[key] = record  # in the index at the next save
        self.dirty = True
        self.report.added.append(record)
        if job.note:
            log.warning("%s: %s", job.name, job.note)
            self.report.warnings.append((job.name, job.note))
        if time.monotonic() - self.last_save > INDEX_SAVE_EVERY_S:
            self._sync_and_save()

    def _transcript(self, job: _Admitted) -> Transcript:
        """The video's transcript: the one saved by an earlier (interrupted) run with the same
        model and language, else made now and saved before its features are extracted."""
        from c2f.speech.transcript import load_transcript, save_transcript

        assert self.transcriber is not None
        path = transcript_path(self.lib.files, job.video_id)
        if path.is_file():
            try:
                saved = load_transcript(path)
            except C2FError:
                saved = None  # damaged: made again
            same_language = self.transcriber.language in (None, saved.language if saved else None)
            if saved and saved.model == self.transcriber.label and same_language:
                return saved
        transcript = self.transcriber.transcribe_file(job.stored)
        save_transcript(transcript, path)
        return transcript


def transcript_path(files: LibraryFiles, video_id: str) -> Path:
    """features/<video_id>.transcript.json: the machine transcript kept beside the features."""
    return files.feature_path(video_id).with_suffix(".transcript.json")

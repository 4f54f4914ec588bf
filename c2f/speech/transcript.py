"""A machine-made transcript: timed segments plus what made them (model, language), saved as JSON
beside a library's feature files so that an interrupted indexing run does not transcribe twice."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from c2f.errors import FeatureFileError
from c2f.features.store import Subtitle
from c2f.shared_files import atomic_write_text

TRANSCRIPT_FORMAT = "c2f-transcript-1"


@dataclass(frozen=True)
class Segment:
    start: float  # seconds from the start of the file, 0 <= start < end <= duration
    end: float
    text: str


@dataclass
class Transcript:
    segments: list[Segment]
    model: str  # e.g. "whisper-base" or "whisper-tiny-test (TINY TEST MODE)"
    language: str | None  # ISO code Whisper detected or was told; None when no audio
    duration: float  # seconds of audio transcribed
    machine_made: bool = True
    notes: list[str] = field(default_factory=list)  # e.g. "no audio stream"

    def subtitles(self) -> list[Subtitle]:
        """The segments as subtitle cues (what features and the aligner read); empty text dropped."""
        return [Subtitle(s.start, s.end, s.text) for s in self.segments if s.text.strip()]

    def source(self) -> dict:
        """How the subtitles were made, stored with the features (see c2f.features.store)."""
        return {"kind": "transcript", "machine_made": True, "model": self.model, "language": self.language}

    def to_dict(self) -> dict:
        return {"format": TRANSCRIPT_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> Transcript:
        segments = [Segment(float(s["start"]), float(s["end"]), str(s["text"])) for s in data["segments"]]
        return cls(
            segments=segments,
            model=str(data["model"]),
            language=data.get("language"),
            duration=float(data["duration"]),
            machine_made=bool(data.get("machine_made", True)),
            notes=list(data.get("notes", [])),
        )


def save_transcript(transcript: Transcript, path: str | Path) -> Path:
    """Write atomically (c2f.shared_files): a killed run leaves the old file or none."""
    return atomic_write_text(path, json.dumps(transcript.to_dict(), ensure_ascii=False))


def load_transcript(path: str | Path) -> Transcript:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != TRANSCRIPT_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {TRANSCRIPT_FORMAT!r}")
        return Transcript.from_dict(data)
    except FileNotFoundError:
        raise FeatureFileError(f"transcript not found: {path}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FeatureFileError(f"{path}: unreadable transcript ({type(exc).__name__}: {exc})") from None

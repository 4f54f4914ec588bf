"""`c2f transcribe VIDEO --out x.srt [--whisper-model base] [--language auto]`: speech to subtitles."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from c2f.speech.models import DEFAULT_WHISPER_MODEL, WHISPER_MODELS

if TYPE_CHECKING:
    from c2f.speech.whisper import WhisperTranscriber


def add_whisper_arguments(
    p: argparse.ArgumentParser,
    default_model: str | None = DEFAULT_WHISPER_MODEL,
    default_language: str | None = "auto",
) -> None:
    """--whisper-model and --language, shared by `transcribe`, `index --transcribe` and `library resume`."""
    p.add_argument(
        "--whisper-model",
        default=default_model,
        choices=WHISPER_MODELS,
        help=f"Whisper size (default {DEFAULT_WHISPER_MODEL}; tiny-test: random weights, TINY TEST MODE)",
    )
    p.add_argument(
        "--language",
        default=default_language,
        help="ISO code of the speech (default: auto, detected per file)",
    )


def make_transcriber(model: str, language: str, device: str | None) -> WhisperTranscriber:
    """The Whisper transcriber the options ask for (MissingWeightsError names missing files)."""
    from c2f.speech.whisper import WhisperTranscriber

    return WhisperTranscriber(model, language=None if language == "auto" else language, device=device)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transcribe", help="write the speech of a video (or audio file) as .srt subtitles")
    p.add_argument("video", metavar="VIDEO", help="a video or audio file")
    p.add_argument("--out", required=True, help="the .srt file to write")
    add_whisper_arguments(p)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: GPU when present)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from c2f.errors import C2FError
    from c2f.speech.srt import write_srt

    out = Path(args.out)
    if out.is_dir():
        raise C2FError(f"{out} is a folder: give --out a file name such as {out / 'subtitles.srt'}")
    transcriber = make_transcriber(args.whisper_model, args.language, args.device)
    if transcriber.is_tiny:
        print(f"[{transcriber.label}]")
    transcript = transcriber.transcribe_file(args.video)
    write_srt(transcript.segments, out)
    if not transcript.segments and "no audio stream" in transcript.notes:
        print(f"{args.video}: no audio stream; wrote an empty {out}")
        return 0
    print(
        f"wrote {out}: {len(transcript.subtitles())} subtitle(s) over {transcript.duration:.1f} s, "
        f"language {transcript.language or 'unknown'}, model {transcript.model}"
    )
    return 0

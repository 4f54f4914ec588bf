"""`c2f library list|remove ID|reindex|resume [--library DIR]`: look after a library.

`resume [--[no-]transcribe] [--whisper-model M] [--language L]`: by default as the interrupted run
(its speech options are kept in the catalog), so its pending videos get the same machine subtitles."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from c2f.commands.index import add_library_argument, library_folder
from c2f.errors import reason_about

if TYPE_CHECKING:
    from c2f.library import Library
    from c2f.speech.whisper import WhisperTranscriber


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("library", help="list, remove, reindex or resume the videos of a library")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = actions.add_parser("list", help="every video with its status")
    ls.add_argument("--json", action="store_true", help="print JSON")
    rm = actions.add_parser("remove", help="remove a video (its index entries, features and copy)")
    rm.add_argument("video_id", metavar="ID")
    ri = actions.add_parser("reindex", help="rebuild a search index from the feature files")
    ri.add_argument(
        "--mode", default=None, choices=["zero-shot", "learned", "tiny"], help="backend (default: zero-shot)"
    )
    ri.add_argument("--checkpoint", default=None, help="checkpoint folder or name (learned mode)")
    rs = actions.add_parser("resume", help="finish videos left pending by an interrupted `c2f index`")
    rs.add_argument(
        "--transcribe",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="subtitles from the speech for videos without a .srt/.vtt (default: as the interrupted run)",
    )
    from c2f.commands.transcribe import add_whisper_arguments

    add_whisper_arguments(rs, default_model=None, default_language=None)  # None: as the interrupted run
    rs.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: GPU when present)")
    for action in (ls, rm, ri, rs):
        add_library_argument(action)
    p.set_defaults(func=run)


def resume_transcriber(args: argparse.Namespace, library: Library) -> WhisperTranscriber | None:
    """The transcriber a resume runs with: the options given, else those the interrupted run recorded
    (`--no-transcribe` turns it off); None when nothing is pending (no Whisper loaded for nothing)."""
    from c2f.errors import C2FError
    from c2f.library.ingest import recorded_run_speech

    recorded = recorded_run_speech(library.catalog)
    transcribe = args.transcribe if args.transcribe is not None else recorded is not None
    if not transcribe:
        if args.whisper_model or args.language:
            raise C2FError("--whisper-model and --language go with --transcribe")
        return None
    if library.catalog.count("pending") == 0:
        return None
    from c2f.commands.transcribe import make_transcriber
    from c2f.speech.models import DEFAULT_WHISPER_MODEL, TINY_TEST_MODEL

    fallback = TINY_TEST_MODEL if library.settings.preset.startswith("tiny") else DEFAULT_WHISPER_MODEL
    model = args.whisper_model or (recorded.whisper_model if recorded else fallback)
    language = args.language or (recorded.language if recorded else None) or "auto"
    transcriber = make_transcriber(model, language, args.device)
    as_before = "" if args.transcribe else " (as the interrupted run)"
    print(f"transcribing speech with {transcriber.label}{as_before}")
    return transcriber


def run(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict
    from datetime import datetime

    from c2f.library import open_library

    library = open_library(library_folder(args.library))
    if args.action == "list":
        records = library.list()
        if args.json:
            print(json.dumps([asdict(r) for r in records], indent=2))
            return 0
        print(f"library {library.root} (preset {library.settings.preset}): {len(records)} video(s)")
        for r in records:
            added = datetime.fromtimestamp(r.added_at).strftime("%Y-%m-%d %H:%M")
            info = f"{r.duration:8.1f} s {r.num_clips:5d} clips" if r.status == "indexed" else " " * 20
            line = f"  {r.video_id}  {r.status:8s} {info}  {added}  {r.name}"
            print(line + (f"\n      error: {r.error}" if r.error else "") + (f"\n      note: {r.note}" if r.note else ""))
        return 0
    if args.action == "remove":
        rec = library.remove(args.video_id)
        print(f"removed {rec.video_id} ({rec.name})")
        return 0
    if args.action == "reindex":
        backend = None
        if args.mode is not None:
            from c2f.search import load_backend

            backend = load_backend(args.mode, args.checkpoint)
        count = library.reindex(backend)
        print(f"index rebuilt: {count} video(s)")
        return 0
    report = library.resume(transcriber=resume_transcriber(args, library))
    print(f"{len(report.added)} resumed, {len(report.failed)} failed")
    for name, message in report.failed:
        print(f"  failed: {name}: {reason_about(name, message)}")
    return 1 if report.failed else 0

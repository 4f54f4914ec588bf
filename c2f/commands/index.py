"""`c2f index PATH... [--library DIR] [--mode zero-shot|tiny|learned] [--reference] [--transcribe]`:
add videos to a library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from c2f.errors import reason_about

if TYPE_CHECKING:
    from c2f.features import FeatureSettings
    from c2f.library import Library

MODES = ["zero-shot", "tiny", "learned"]


def add_library_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--library", default=None, help="library folder (default: $C2F_LIBRARY or ./c2f_library)")


def library_folder(given: str | None) -> Path:
    """The --library folder; LibraryError when the path is taken by something that is not a folder."""
    from c2f.errors import LibraryError
    from c2f.library import default_library_root

    path = Path(given) if given is not None else default_library_root()
    if path.exists() and not path.is_dir():
        raise LibraryError(f"{path} is a file, not a library folder: give --library a folder")
    return path


def open_or_create_library(
    path: Path, settings: FeatureSettings | str | None, device: str | None, vector_store: str | None = None
) -> Library:
    """Library(path), with a folder that cannot be created (read-only, /proc, ...) in one line."""
    from c2f.errors import LibraryError
    from c2f.library import Library

    try:
        return Library(path, settings=settings, device=device, vector_store=vector_store)
    except OSError as exc:
        raise LibraryError(f"{exc.filename or path}: cannot create the library there ({exc.strerror})") from None


def videos_from_arguments(arguments: Sequence[str]) -> tuple[list[Path], list[str]]:
    """(the videos the arguments name, in order; the arguments that name none). Each of the latter
    (a folder without video files, e.g. one named dir.mp4) gets one line on stderr; C2FError when
    no argument names a video."""
    from c2f.errors import C2FError
    from c2f.video.files import VIDEO_EXTENSIONS, videos_in

    kinds = " ".join(sorted(VIDEO_EXTENSIONS))
    per_argument = [(argument, videos_in(argument)) for argument in arguments]
    videos = [video for _, found in per_argument for video in found]
    if not videos:
        raise C2FError(f"no videos found in {', '.join(arguments)} (video files end in {kinds})")
    without = [argument for argument, found in per_argument if not found]
    for argument in without:
        print(f"skipped {argument}: a folder with no video file in it (video files end in {kinds})", file=sys.stderr)
    return videos, without


def add_workers_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="decoding processes for many videos at once (default: by the machine; 0: one at a time)",
    )


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    add_workers_argument(p)
    p.add_argument(
        "--engine",
        default="local",
        choices=["local", "ray"],
        help="ray: a Ray Data pipeline (pip install 'c2f[ray]'), local or on a cluster (--address)",
    )
    p.add_argument("--address", default=None, help="Ray cluster with --engine ray: auto or ray://HOST:PORT")
    p.add_argument(
        "--vector-store",
        default=None,
        metavar="faiss|qdrant://[DIR|HOST:PORT]|milvus://[FILE.db|HOST:PORT]",
        help="where a NEW library keeps its clip vectors (default faiss, in memory; qdrant:// is "
        "recommended past RAM: Qdrant's embedded engine in the library folder, vectors on disk, or "
        "qdrant://HOST:PORT a Qdrant server or cluster, pip install 'c2f[qdrant]'; milvus:// is a "
        "Milvus Lite file, pip install 'c2f[milvus]')",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="add videos (files or folders) to a library and index them")
    p.add_argument("paths", nargs="+", metavar="PATH", help="video files or folders (searched recursively)")
    add_library_argument(p)
    features = p.add_mutually_exclusive_group()
    features.add_argument(
        "--mode",
        default=None,
        choices=MODES,
        help="the search backend the library is for; it fixes the features of a NEW library "
        "(zero-shot: clip-only, tiny: tiny-clip-only, learned: the checkpoint's) and must fit an "
        "existing one (default: the library's own; zero-shot for a new one)",
    )
    from c2f.features.settings import PRESETS  # light: no torch

    features.add_argument(
        "--preset",
        default=None,
        choices=sorted(PRESETS),
        help="feature preset of a NEW library, instead of --mode",
    )
    p.add_argument("--checkpoint", default=None, help="checkpoint folder or name (--mode learned)")
    p.add_argument("--reference", action="store_true", help="keep a reference to the files instead of a copy")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: GPU when present)")
    p.add_argument(
        "--transcribe",
        action="store_true",
        help="subtitles from the speech (Whisper) for videos without a .srt/.vtt (a sidecar always wins)",
    )
    from c2f.commands.transcribe import add_whisper_arguments

    add_whisper_arguments(p, default_model=None)  # None: base, or tiny-test with --mode tiny
    add_engine_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from c2f.errors import C2FError

    videos, without_videos = videos_from_arguments(args.paths)
    if args.checkpoint and args.mode != "learned":
        raise C2FError("--checkpoint goes with --mode learned")
    path = library_folder(args.library)
    settings = args.preset
    if args.mode is not None:  # the backend knows its features (a learned one: its checkpoint's)
        from c2f.search import load_backend

        settings = load_backend(args.mode, args.checkpoint, args.device).feature_settings
    transcriber = None
    if args.transcribe:  # loaded before any work: missing Whisper weights stop the run at once
        from c2f.commands.transcribe import make_transcriber
        from c2f.speech.models import DEFAULT_WHISPER_MODEL, TINY_TEST_MODEL

        model = args.whisper_model or (TINY_TEST_MODEL if args.mode == "tiny" else DEFAULT_WHISPER_MODEL)
        transcriber = make_transcriber(model, args.language, args.device)
        print(f"transcribing speech with {transcriber.label}")
    elif args.whisper_model or args.language != "auto":
        raise C2FError("--whisper-model and --language go with --transcribe")
    from c2f.features.parallel import make_extractor
    from c2f.video.layout import check_decode_environment

    check_decode_environment()  # a bad setting is one line before any progress bar
    extractor = make_extractor(args.engine, args.workers, args.address)
    library = open_or_create_library(path, settings, args.device, args.vector_store)
    bar = tqdm(total=1000, desc="index", bar_format="{percentage:3.0f}%|{bar}| {desc}")

    def progress(name: str, video_fraction: float, overall: float) -> None:
        bar.set_description_str(f"{name[:40]} {video_fraction:4.0%}", refresh=False)
        bar.n = round(overall * 1000)
        bar.refresh()

    report = library.add(
        videos, copy=not args.reference, progress=progress, transcriber=transcriber, extractor=extractor
    )
    bar.n = 1000
    bar.close()
    print(
        f"{len(report.added)} added, {len(report.duplicates)} already in the library, "
        f"{len(report.failed)} failed; library {library.root} (preset {library.settings.preset})"
    )
    for name, video_id in report.duplicates:
        print(f"  duplicate: {name} (same content as {video_id})")
    for name, message in report.failed:
        print(f"  failed: {name}: {reason_about(name, message)}")
    for name, message in report.warnings:  # indexed, but without something (e.g. unreadable subtitles)
        print(f"  warning: {name}: {reason_about(name, message)}")
    return 1 if report.failed or without_videos else 0

"""`c2f index PATH... [--library DIR] [--preset P] [--reference]`: add videos to a library."""

from __future__ import annotations

import argparse


def add_library_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--library", default=None, help="library folder (default: $C2F_LIBRARY or ./c2f_library)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="add videos (files or folders) to a library and index them")
    p.add_argument("paths", nargs="+", metavar="PATH", help="video files or folders (searched recursively)")
    add_library_argument(p)
    p.add_argument(
        "--preset",
        default=None,
        help="feature preset of a NEW library: clip-only (default), default, tiny, tiny-clip-only",
    )
    p.add_argument("--reference", action="store_true", help="keep a reference to the files instead of a copy")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: GPU when present)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from c2f.library import Library

    library = Library(args.library, settings=args.preset, device=args.device)
    bar = tqdm(total=1000, desc="index", bar_format="{percentage:3.0f}%|{bar}| {desc}")

    def progress(name: str, video_fraction: float, overall: float) -> None:
        bar.set_description_str(f"{name[:40]} {video_fraction:4.0%}", refresh=False)
        bar.n = round(overall * 1000)
        bar.refresh()

    report = library.add(args.paths, copy=not args.reference, progress=progress)
    bar.n = 1000
    bar.close()
    print(
        f"{len(report.added)} added, {len(report.duplicates)} already in the library, "
        f"{len(report.failed)} failed; library {library.root} (preset {library.settings.preset})"
    )
    for name, video_id in report.duplicates:
        print(f"  duplicate: {name} (same content as {video_id})")
    for name, message in report.failed:
        print(f"  failed: {name}: {message}")
    return 1 if report.failed else 0

"""`c2f library list|remove ID|reindex|resume [--library DIR]`: look after a library."""

from __future__ import annotations

import argparse

from c2f.commands.index import add_library_argument, library_folder


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
    actions.add_parser("resume", help="finish videos left pending by an interrupted `c2f index`")
    for action in (ls, rm, ri, actions.choices["resume"]):
        add_library_argument(action)
    p.set_defaults(func=run)


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
    report = library.resume()
    print(f"{len(report.added)} resumed, {len(report.failed)} failed")
    for name, message in report.failed:
        print(f"  failed: {name}: {message}")
    return 1 if report.failed else 0

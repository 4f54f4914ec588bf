"""`c2f search ["QUERY"] [--like VIDEO_ID:START-END | --image FILE] [--weight W] [--library DIR]
[--mode M] [--top-k 10] [--moments 3] [--json] [--match visual|speech|both] [--speech-weight W]
[--export DIR --format csv|json|edl|clips [--exact-cuts]]`."""

from __future__ import annotations

import argparse

from c2f.commands.index import add_library_argument, library_folder

EXPORT_FORMATS = ["csv", "json", "edl", "clips"]  # c2f.export.FORMATS (not imported: register stays cheap)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="find the moments of a library's videos that match a sentence, a moment or a picture",
    )
    p.add_argument("query", metavar="QUERY", nargs="?", default=None, help="a sentence (optional with --like/--image)")
    p.add_argument(
        "--like",
        metavar="VIDEO_ID:START-END",
        default=None,
        help="more like this: moments similar to this one (seconds or m:ss; the source moment is left out)",
    )
    p.add_argument("--image", metavar="FILE", default=None, help="moments that look like this picture")
    p.add_argument(
        "--weight",
        type=float,
        default=None,
        help="with QUERY and --like/--image: score = (1-W)*text + W*example (default 0.5)",
    )
    add_library_argument(p)
    p.add_argument(
        "--mode",
        default="zero-shot",
        choices=["zero-shot", "learned", "tiny"],
        help="zero-shot CLIP (default), a learned C2F checkpoint, or tiny random weights (tests)",
    )
    p.add_argument("--checkpoint", default=None, help="checkpoint folder or name under checkpoints/")
    p.add_argument("--top-k", type=int, default=10, help="videos to return (default 10)")
    p.add_argument("--moments", type=int, default=3, help="moments per video (default 3)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: GPU when present)")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    p.add_argument(
        "--match",
        default="visual",
        choices=["visual", "speech", "both"],
        help="zero-shot/tiny: score clips by what is seen (default), what is said, or both",
    )
    p.add_argument(
        "--speech-weight", type=float, default=None, help="w of --match both: (1-w)*visual + w*speech (default 0.15)"
    )
    p.add_argument("--export", metavar="DIR", default=None, help="also write the found moments into DIR")
    p.add_argument(
        "--format",
        dest="export_format",
        choices=EXPORT_FORMATS,
        default=None,
        help="with --export: csv, json, edl (CMX 3600) or clips (a zip of cut clips)",
    )
    p.add_argument(
        "--exact-cuts",
        action="store_true",
        help="with --format clips: re-encode for frame-exact cuts (default: stream copy from the keyframe before)",
    )
    p.set_defaults(func=run)


def build_query(args: argparse.Namespace):
    """A sentence (str) or a c2f.search.Query; QueryError for a bad combination, before models load."""
    from c2f.errors import QueryError
    from c2f.search.by_example import DEFAULT_EXAMPLE_WEIGHT, Query, parse_moment_ref
    from c2f.search.query import clean_query

    if args.like is None and args.image is None:
        if args.query is None:
            raise QueryError("nothing to search for: give a sentence, --like VIDEO_ID:START-END or --image FILE")
        if args.weight is not None:
            raise QueryError("--weight mixes a sentence with --like or --image: give one of them")
        clean_query(args.query)
        return args.query
    if args.weight is not None and args.query is None:
        raise QueryError("--weight mixes a sentence with --like or --image: give the sentence too")
    like = parse_moment_ref(args.like) if args.like is not None else None
    weight = DEFAULT_EXAMPLE_WEIGHT if args.weight is None else args.weight
    return Query(text=args.query, like=like, image=args.image, weight=weight)


def check_export(args: argparse.Namespace) -> None:
    from c2f.errors import C2FError

    if (args.export is None) != (args.export_format is None):
        raise C2FError("--export DIR and --format FORMAT go together")
    if args.exact_cuts and args.export_format != "clips":
        raise C2FError("--exact-cuts goes with --format clips")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from c2f.errors import C2FError
    from c2f.library import open_library
    from c2f.search import load_backend

    query = build_query(args)  # a bad query is refused before models load
    check_export(args)
    library = open_library(library_folder(args.library), args.device)
    backend = load_backend(args.mode, args.checkpoint, args.device)
    if args.match != "visual" or args.speech_weight is not None:
        if not hasattr(backend, "with_match"):
            raise C2FError("--match and --speech-weight go with --mode zero-shot or tiny")
        backend = backend.with_match(args.match, args.speech_weight)
    result = library.search(query, backend, top_k_videos=args.top_k, moments_per_video=args.moments)
    written = []
    if args.export is not None:
        written = library.export(
            result.moments, args.export, args.export_format, args.exact_cuts, title=f"C2F {result.query}"
        )
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        for path in written:
            print(f"wrote {path}", file=sys.stderr)
        return 0
    if backend.is_tiny:
        print(f"[{backend.description}]")
    for note in result.notes:
        print(f"note: {note}")
    print(f"{len(result.moments)} moment(s) for {result.query!r} ({result.backend_name}):")
    for rank, m in enumerate(result.moments, 1):
        print(
            f"{rank:3d}. {m.name}  {m.start:7.1f}-{m.end:7.1f} s  score {m.score:.4f}  "
            f"(video {m.video_id}, video score {m.video_score:.4f})"
        )
    for path in written:
        print(f"wrote {path}")
    return 0

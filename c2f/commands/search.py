"""`c2f search "QUERY" [--library DIR] [--mode M] [--top-k 10] [--moments 3] [--json]
[--match visual|speech|both] [--speech-weight W]`."""

from __future__ import annotations

import argparse

from c2f.commands.index import add_library_argument, library_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="find the moments of a library's videos that match a sentence")
    p.add_argument("query", metavar="QUERY")
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from c2f.errors import C2FError
    from c2f.library import open_library
    from c2f.search import load_backend
    from c2f.search.query import clean_query

    clean_query(args.query)  # a bad query is refused before models load
    library = open_library(library_folder(args.library), args.device)
    backend = load_backend(args.mode, args.checkpoint, args.device)
    if args.match != "visual" or args.speech_weight is not None:
        if not hasattr(backend, "with_match"):
            raise C2FError("--match and --speech-weight go with --mode zero-shot or tiny")
        backend = backend.with_match(args.match, args.speech_weight)
    result = library.search(args.query, backend, top_k_videos=args.top_k, moments_per_video=args.moments)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
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
    return 0

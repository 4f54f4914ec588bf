"""`python -m c2f`: one subcommand per module in `c2f.commands`.

Each command module exposes `register(subparsers)` (cheap: no heavy imports) and sets
`func=run` on its parser; `run(args) -> int` does the work through the library API.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from c2f import __version__
from c2f.errors import C2FError

# Order is the order shown by --help.
COMMANDS = ["extract", "import_tvr", "index", "library", "search", "train", "pretrain", "evaluate"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="c2f",
        description="C2F: find the moment, in any video of a collection (text-to-video corpus moment retrieval).",
    )
    parser.add_argument("--version", action="version", version=f"c2f {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"c2f.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except C2FError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

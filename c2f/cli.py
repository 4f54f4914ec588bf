"""`python -m c2f`: one subcommand per module in `c2f.commands`.

Each command module exposes `register(subparsers)` (cheap: no heavy imports) and sets
`func=run` on its parser; `run(args) -> int` does the work through the library API.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable

from c2f import __version__
from c2f.environment import EnvironmentSettingError, env_flag
from c2f.errors import C2FError

# Order is the order shown by --help.
COMMANDS = ["extract", "import_tvr", "index", "transcribe", "library", "search", "train", "pretrain", "evaluate", "doctor"]


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


def check_device(requested: str | None) -> None:
    """Refuse an unusable --device (or C2F_DEVICE) once, before any work, in one line."""
    from c2f.device import pick_device

    where = "--device" if requested else "C2F_DEVICE"
    choice = requested or os.environ.get("C2F_DEVICE") or "auto"
    try:
        device = pick_device(requested)
    except RuntimeError as exc:
        if "no CUDA GPU" in str(exc):
            raise C2FError(f"{where} {choice!r}: no CUDA GPU is available here; use cpu") from None
        raise C2FError(f"{where} {choice!r} is not a device: use cpu, cuda or cuda:N") from None
    import torch

    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise C2FError(f"{where} {choice!r}: there are {torch.cuda.device_count()} CUDA GPU(s) (cuda:0 ...)")

def check_switches() -> None:
    """Read the switches a run may meet deep inside (C2F_CPU_BF16, C2F_TUNING, C2F_OFFLINE) now: a
    bad value is the run's one line before any work, not each video's failure."""
    from c2f.device import forced_cpu_bf16
    from c2f.tuning import tuning_on
    from c2f.weights import offline

    forced_cpu_bf16(), tuning_on(), offline()


def exit_status(main: Callable[[], int | None]) -> int:
    """The exit status of `main()` for a program run from a shell (`python -m c2f`, `python
    app.py`): a failure is one line on stderr, `error: <message>`, never a traceback. 2 for an
    intentional error or one the machine gave (permission, disk full: the file named), 130 for
    Ctrl-C, 1 for a bug (its traceback with C2F_DEBUG=1)."""
    try:
        debug = env_flag("C2F_DEBUG", False)
    except EnvironmentSettingError as exc:  # read first: a bad value never hides the error it is for
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(main() or 0)
    except C2FError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # the machine refused (permission, disk full, a file where a folder goes)
        if debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: one line here, the traceback on demand
        if debug:
            raise
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        print(f"error: {message} (run with C2F_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0

    def run() -> int:
        if hasattr(args, "device"):  # a command that computes
            check_switches()
            check_device(args.device)
        return int(args.func(args) or 0)

    return exit_status(run)


if __name__ == "__main__":
    raise SystemExit(main())

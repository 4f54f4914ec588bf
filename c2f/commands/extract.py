"""`c2f extract VIDEO_OR_DIR... --out DIR`: clip features of videos, one .safetensors file each."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract", help="extract clip features of videos into a folder")
    p.add_argument("inputs", nargs="+", metavar="VIDEO_OR_DIR")
    p.add_argument("--out", required=True, help="output folder (one <video>.safetensors per video)")
    from c2f.features.settings import PRESETS  # light: no torch

    p.add_argument(
        "--preset",
        default="default",
        choices=sorted(PRESETS),
        help="feature preset (tiny* = random test models, meaningless results)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: GPU when present)")
    p.add_argument(
        "--subtitles",
        default=None,
        metavar="FILE_OR_DIR",
        help="a .srt/.vtt file (one video) or a folder of <video name>.srt/.vtt "
        "(default: a sidecar file next to each video)",
    )
    from c2f.commands.index import add_workers_argument

    add_workers_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from c2f.commands.index import videos_from_arguments
    from c2f.errors import C2FError, reason_about
    from c2f.features import get_preset
    from c2f.features.extract import ExtractOutcome, extract_to_dir
    from c2f.features.parallel import decode_workers
    from c2f.video.layout import check_decode_environment

    settings = get_preset(args.preset)
    check_decode_environment()  # a bad setting is one line before any progress bar
    workers = decode_workers(args.workers, args.device)
    videos, without_videos = videos_from_arguments(args.inputs)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        what = "is a file, not a folder" if out.is_file() else f"cannot be created ({exc.strerror})"
        raise C2FError(f"--out {out} {what}") from None
    # One bar over videos; within a video it advances by the fraction of seconds done.
    bar = tqdm(total=len(videos), unit="video", desc="extract", bar_format="{l_bar}{bar}| {n:.1f}/{total}")

    def progress(index: int, done: float, total: float) -> None:
        bar.n = index + (done / total if total > 0 else 1.0)
        bar.set_postfix_str(videos[index].name[:30], refresh=True)

    def on_outcome(outcome: ExtractOutcome) -> None:  # a refused video: one line, as it happens
        if outcome.error is not None:
            tqdm.write(f"skipped {outcome.video}: {reason_about(outcome.video, outcome.error)}")

    outcomes = extract_to_dir(
        videos,
        out,
        settings,
        args.device,
        args.subtitles,
        progress=progress,
        on_outcome=on_outcome,
        workers=workers,
    )
    bar.n = len(videos)
    bar.close()
    failures = [o for o in outcomes if o.error is not None]
    skipped = f"; {len(failures)} skipped (above)" if failures else ""
    print(
        f"{len(videos) - len(failures)} of {len(videos)} videos extracted to {out} (preset {settings.preset}){skipped}"
    )
    return 1 if failures or without_videos else 0

"""`c2f extract VIDEO_OR_DIR... --out DIR`: clip features of videos, one .safetensors file each."""

from __future__ import annotations

import argparse
from pathlib import Path

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}


def collect_videos(inputs: list[str]) -> list[Path]:
    """Files as given; folders expanded (recursively) to the video files they hold."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_EXTENSIONS and f.is_file())
        else:
            found.append(p)
    return found


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract", help="extract clip features of videos into a folder")
    p.add_argument("inputs", nargs="+", metavar="VIDEO_OR_DIR")
    p.add_argument("--out", required=True, help="output folder (one <video>.safetensors per video)")
    p.add_argument(
        "--preset", default="default", help="feature preset: default, clip-only, tiny, tiny-clip-only"
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: GPU when present)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from c2f.errors import C2FError
    from c2f.features import get_preset, save_features
    from c2f.features.extract import extract_features

    settings = get_preset(args.preset)
    videos = collect_videos(args.inputs)
    out = Path(args.out)
    failures: list[tuple[Path, str]] = []
    bar = tqdm(videos, unit="video", desc="extract")
    for video in bar:
        bar.set_postfix_str(video.name[:30])
        try:
            feats = extract_features(video, settings, device=args.device)
            save_features(feats, out / f"{feats.video_id}.safetensors")
        except C2FError as exc:
            failures.append((video, str(exc)))
            tqdm.write(f"skipped: {exc}")
    print(
        f"{len(videos) - len(failures)} of {len(videos)} videos extracted to {out} (preset {settings.preset})"
    )
    for _video, why in failures:
        print(f"  failed: {why}")
    return 1 if failures else 0

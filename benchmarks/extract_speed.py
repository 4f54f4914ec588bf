"""Feature extraction speed: real-time factors (seconds of video per wall second) per stage and preset.

Full-size architectures (CLIP ViT-B/32, S3D) with random weights unless real ones are installed:
timing does not depend on the weights' values. Prints one JSON object; a naive sequential
baseline (decode everything, then encode clip by clip) is measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from c2f.encoders.registry import _clip, _s3d
from c2f.features import get_preset
from c2f.features.extract import extract_features
from c2f.video import iter_frames, probe_video
from c2f.video.tools import ffmpeg_exe


def make_test_video(path: Path, seconds: int) -> None:
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=s=640x360:r=30:d={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )


def random_weight_settings(name: str):
    """Same architectures and sizes as the preset, random weights (no download needed)."""
    s = get_preset(name)
    return replace(s, clip_weights="random", s3d_weights="random" if s.uses_s3d else None)


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_preset(video: Path, name: str, repeats: int, device: str) -> dict:
    s = random_weight_settings(name)
    info = probe_video(video)
    clip_enc = _clip(s.clip_model, "random", device) if s.clip_weights == "random" else None
    s3d_enc = _s3d("random", s.s3d_image_size, device) if s.uses_s3d else None
    per_clip, short = s.frames_per_clip, s.decode_short_side
    n_clips = math.ceil(info.duration / s.clip_seconds)

    def decode():
        for _ in iter_frames(video, fps=s.decode_fps, short_side=short, chunk_frames=256, info=info):
            pass

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (n_clips, short, short * 16 // 9, 3), dtype=np.uint8)
    # Warm-up (oneDNN / cuDNN pick their kernels on the first call): not part of any timing.
    clip_enc.encode_images(frames[:2])
    if s3d_enc is not None:
        s3d_enc.encode_clips(np.zeros((1, s.s3d_frames_per_clip, short, short, 3), np.uint8))
    out = {"clips": n_clips}
    out["decode_rtf"] = info.duration / timed(decode, repeats)
    out["clip_rtf"] = info.duration / timed(lambda: clip_enc.encode_images(frames), repeats)
    if s3d_enc is not None:
        clips = rng.integers(0, 255, (8, s.s3d_frames_per_clip, short, short * 16 // 9, 3), dtype=np.uint8)
        per8 = timed(lambda: s3d_enc.encode_clips(clips), repeats)
        out["s3d_rtf"] = info.duration / (per8 * n_clips / 8)
    out["pipeline_rtf"] = info.duration / timed(lambda: extract_features(video, s, device=device), repeats)
    # This preset runs in a process of its own, so the peak covers models + decoding + pipeline
    # (measured before the naive baseline, which holds every decoded frame at once).
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    def naive():
        # decode every sample first, then one model call per clip: no overlap, no batching
        allf = np.concatenate(
            [c.frames for c in iter_frames(video, fps=s.decode_fps, short_side=short, info=info)]
        )
        for r in range(n_clips):
            clip = allf[r * per_clip : (r + 1) * per_clip]
            if len(clip) == 0:
                break
            clip_enc.encode_images(clip[len(clip) // 2 : len(clip) // 2 + 1])
            if s3d_enc is not None:
                s3d_enc.encode_clips(clip[None])

    out["naive_rtf"] = info.duration / timed(naive, 1)
    out["speedup_vs_naive"] = out["pipeline_rtf"] / out["naive_rtf"]
    return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--video", type=Path, help="time this video instead of a generated 640x360 one")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--presets", default="default,clip-only,fast")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the CI machines have 2 cores)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--one-preset", nargs=2, metavar=("NAME", "VIDEO"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.one_preset:  # child process: one preset, JSON on stdout
        name, video = args.one_preset
        print(json.dumps(bench_preset(Path(video), name, args.repeats, args.device)))
        return
    presets = {}
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or Path(tmp) / "bench.mp4"
        if args.video is None:
            make_test_video(video, args.seconds)
        info = probe_video(video)
        for name in args.presets.split(","):
            # One process per preset: a clean peak RSS, and no model of another preset in memory.
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one-preset",
                    name,
                    str(video),
                    "--repeats",
                    str(args.repeats),
                    "--threads",
                    str(args.threads),
                    "--device",
                    args.device,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            presets[name] = json.loads(child.stdout.strip().splitlines()[-1])
    result = {
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(0),
        "threads": args.threads,
        "video_seconds": round(info.duration, 2),
        "video_size": f"{info.width}x{info.height}",
        "weights": "random (full-size architectures; timing does not depend on weight values)",
        "repeats": args.repeats,
        "presets": presets,
    }
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()

"""Feature extraction speed: real-time factors (seconds of video per wall second) per stage and preset.

Full-size architectures (CLIP ViT-B/32, S3D) with random weights unless real ones are installed:
timing does not depend on the weights' values. Prints one JSON object and saves it as
benchmarks/results_extract_speed_<variant>.json; a naive sequential baseline (decode everything,
then encode clip by clip) is measured in the same run.

The encoders choose their dtype, batch and memory format by measurement on first use (c2f/encoders/
tuning.py); the JSON lists what they chose (and the timings behind it), the seconds the tuning took
and the kernel limits in force. Run it as is, with C2F_CPU_BF16=0, and with
`ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2` (`--variant avx2`): the JSON says whether the
limits took effect (torch's capability and the ISA oneDNN reports).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from c2f import tuning
from c2f.device import kernels_in_force
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
    return timed_with_cores(fn, repeats)[0]


def timed_with_cores(fn, repeats: int) -> tuple[float, float]:
    """Median wall seconds, and the cores the process really had meanwhile (CPU seconds of all its
    threads per wall second): on a shared machine this says whether the figures are calm ones."""
    times, cores = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t)
        cores.append((time.process_time() - c) / times[-1])
    return statistics.median(times), statistics.median(cores)


def bench_preset(video: Path, name: str, repeats: int, device: str, skip_naive: bool = False) -> dict:
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
    # Warm-up (oneDNN / cuDNN pick their kernels on the first call): not part of any timing. The
    # first call of each encoder also tunes it (or reads the tuning cache): timed apart.
    t0 = time.perf_counter()
    clip_enc.encode_images(frames[:2])
    if s3d_enc is not None:
        s3d_enc.encode_clips(
            rng.integers(0, 255, (1, s.s3d_frames_per_clip, short, short, 3), dtype=np.uint8)
        )
    out = {"clips": n_clips, "first_use_s": time.perf_counter() - t0}
    out["decode_rtf"] = info.duration / timed(decode, repeats)
    out["clip_rtf"] = info.duration / timed(lambda: clip_enc.encode_images(frames), repeats)
    if s3d_enc is not None:
        clips = rng.integers(0, 255, (8, s.s3d_frames_per_clip, short, short * 16 // 9, 3), dtype=np.uint8)
        per8 = timed(lambda: s3d_enc.encode_clips(clips), repeats)
        out["s3d_rtf"] = info.duration / (per8 * n_clips / 8)
    wall, cores = timed_with_cores(lambda: extract_features(video, s, device=device), repeats)
    out["pipeline_rtf"] = info.duration / wall
    out["pipeline_cores_used"] = cores
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

    if not skip_naive:
        out["naive_rtf"] = info.duration / timed(naive, 1)
        out["speedup_vs_naive"] = out["pipeline_rtf"] / out["naive_rtf"]
    out = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in out.items()}
    out["tuning"] = [
        {k: v for k, v in asdict(c).items() if k in ("task", "shape", "setting", "source", "timings_ms")}
        for c in tuning.choices_made()
    ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--video", type=Path, help="time this video instead of a generated 640x360 one")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--presets", default="default,clip-only,fast")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the CI machines have 2 cores)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument(
        "--variant", default="auto", help="name of the saved results_extract_speed_<variant>.json"
    )
    ap.add_argument(
        "--tuning-cache",
        type=Path,
        help="tuning cache to use (default: a fresh one, so the encoders tune in this run)",
    )
    ap.add_argument("--skip-naive", action="store_true", help="leave out the naive baseline (half the time)")
    ap.add_argument("--one-preset", nargs=2, metavar=("NAME", "VIDEO"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.one_preset:  # child process: one preset, JSON on stdout
        name, video = args.one_preset
        print(json.dumps(bench_preset(Path(video), name, args.repeats, args.device, args.skip_naive)))
        return
    presets = {}
    with tempfile.TemporaryDirectory() as tmp:
        # one cache for the presets of this run: `fast` reuses the CLIP choice `default` measured
        os.environ["C2F_TUNING_CACHE"] = str(args.tuning_cache or Path(tmp) / "tuning.json")
        video = args.video or Path(tmp) / "bench.mp4"
        if args.video is None:
            make_test_video(video, args.seconds)
        info = probe_video(video)
        result = {
            "variant": args.variant,
            "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(0),
            "cpu": tuning.cpu_model(),
            "kernels": kernels_in_force(),
            "C2F_CPU_BF16": os.environ.get("C2F_CPU_BF16"),
            "threads": args.threads,
            "video_seconds": round(info.duration, 2),
            "video_size": f"{info.width}x{info.height}",
            "weights": "random (full-size architectures; timing does not depend on weight values)",
            "repeats": args.repeats,
            "presets": presets,
        }
        saved = Path(__file__).parent / f"results_extract_speed_{args.variant}.json"
        for name in args.presets.split(","):
            # One process per preset: a clean peak RSS, and no model of another preset in memory.
            command = [
                sys.executable,
                __file__,
                "--one-preset",
                name,
                str(video),
                "--repeats",
                str(args.repeats),
            ]
            command += ["--threads", str(args.threads), "--device", args.device]
            command += ["--skip-naive"] if args.skip_naive else []
            child = subprocess.run(command, check=True, capture_output=True, text=True)
            presets[name] = json.loads(child.stdout.strip().splitlines()[-1])
            saved.write_text(json.dumps(result, indent=1) + "\n")  # saved after each preset
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()

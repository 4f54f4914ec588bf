"""Many videos at once: real-time factor (seconds of video per wall second) vs decoding workers.

A folder of generated 640x360 videos is extracted with 0 workers (today's one-at-a-time path: the
baseline of the same run) and with 1, 2, 4, ... decoding worker processes (c2f.features.parallel),
for each preset. Full-size architectures (CLIP ViT-B/32, S3D) with random weights, as
benchmarks/extract_speed.py: timing does not depend on the weights' values. The encoders alone are
timed too (encoder_rtf), so the JSON says what bounds each run: the encoders, or decoding.

2 CPU cores (keep it short): python benchmarks/extract_scale.py --videos 8 --seconds 20
A GPU machine:               python benchmarks/extract_scale.py --videos 40 --seconds 60
Prints one JSON object and saves it as benchmarks/results_extract_scale_<cpu|gpu>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

# Only light imports at the top: the decoding workers (spawned) import this file again, and
# should not pay for torch and the encoders they never use.
from c2f.features.parallel import VideoJob, available_cores, extract_many


def worker_counts(cores: int) -> list[int]:
    counts, w = [], 1
    while w < cores:
        counts.append(w)
        w *= 2
    return [*counts, cores]


def encoder_rtf(settings, device: str, repeats: int = 3) -> float:
    """Seconds of video per second the encoders alone reach on ready decoded groups."""
    import numpy as np
    import torch

    from c2f.features.extract import ClipGroupEncoder

    encoder = ClipGroupEncoder(settings, device)
    short = settings.decode_short_side
    rng = np.random.default_rng(0)
    group = rng.integers(0, 255, (encoder.group, settings.frames_per_clip, short, short * 16 // 9, 3), np.uint8)
    encoder.encode(group)  # warm-up: kernels chosen, tuning done
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    t = time.perf_counter()
    for _ in range(repeats):
        encoder.encode(group)
    sync()
    return repeats * encoder.group * settings.clip_seconds / (time.perf_counter() - t)


def run_folder(jobs: list[VideoJob], settings, device: str, workers: int) -> tuple[float, float]:
    """(wall seconds, CPU cores this process used meanwhile) of extracting every job."""
    t, c = time.perf_counter(), time.process_time()
    results = list(extract_many(jobs, settings, device, workers=workers))
    wall = time.perf_counter() - t
    failed = [r.error for r in results if r.error]
    if failed:
        raise SystemExit(f"extraction failed: {failed[0]}")
    return wall, (time.process_time() - c) / wall


def main() -> None:
    import torch
    from extract_speed import make_test_video, random_weight_settings

    from c2f import tuning
    from c2f.video import probe_video

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--presets", default="clip-only,default")
    ap.add_argument("--workers", default=None, help="comma-separated counts (default 1, 2, 4, ... cores)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, help="JSON file (default benchmarks/results_extract_scale_<cpu|gpu>.json)")
    args = ap.parse_args()
    cores = available_cores()
    counts = [int(w) for w in args.workers.split(",")] if args.workers else worker_counts(cores)
    gpu = args.device.startswith("cuda")
    out = args.out or Path(__file__).parent / f"results_extract_scale_{'gpu' if gpu else 'cpu'}.json"
    with tempfile.TemporaryDirectory() as tmp:
        first = Path(tmp) / "v000.mp4"
        make_test_video(first, args.seconds)
        videos = [first]
        for i in range(1, args.videos):  # same content, separate files (timing does not depend on it)
            videos.append(Path(tmp) / f"v{i:03d}.mp4")
            shutil.copyfile(first, videos[-1])
        info = probe_video(first)
        total = info.duration * len(videos)
        result: dict = {
            "device": torch.cuda.get_device_name(0) if gpu else "cpu",
            "cpu": tuning.cpu_model(),
            "cores": cores,
            "torch_threads": torch.get_num_threads(),
            "load_average_at_start": list(os.getloadavg()),
            "videos": len(videos),
            "video_seconds": round(info.duration, 2),
            "video_size": f"{info.width}x{info.height}",
            "weights": "random (full-size architectures; timing does not depend on weight values)",
            "presets": {},
        }
        for name in args.presets.split(","):
            settings = random_weight_settings(name)
            enc = encoder_rtf(settings, args.device)  # also loads and tunes the models: not in any timing
            jobs = [VideoJob(v, v.stem) for v in videos]
            wall, used = run_folder(jobs, settings, args.device, 0)
            entry: dict = {
                "encoder_rtf": round(enc, 1),
                "one_at_a_time_rtf": round(total / wall, 2),
                "one_at_a_time_cores_used": round(used, 2),
                "workers": {},
            }
            for w in counts:
                wall, used = run_folder(jobs, settings, args.device, w)
                entry["workers"][str(w)] = {"rtf": round(total / wall, 2), "main_process_cores_used": round(used, 2)}
            best_w, best = max(entry["workers"].items(), key=lambda kv: kv[1]["rtf"])
            entry["best_workers"] = int(best_w)
            entry["speedup_vs_one_at_a_time"] = round(best["rtf"] / entry["one_at_a_time_rtf"], 2)
            # Within 80% of what the encoders alone reach: the encoders bound it; else decoding
            # (or the copies between processes) does.
            entry["bound_by"] = "encoder" if best["rtf"] >= 0.8 * enc else "decode"
            result["presets"][name] = entry
            out.write_text(json.dumps(result, indent=2) + "\n")  # kept after each preset
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

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


class NoOpEncoder:
    """The encoders replaced by nothing: the pipeline alone (decoding, sampling, copies, queue)."""

    def __init__(self, settings) -> None:
        from c2f.features.clips import group_sizes

        self.group, self.first_group = group_sizes(settings)
        self.streams = [("clip", 512)] + ([("s3d", 1024)] if settings.uses_s3d else [])

    def encode(self, clips):
        import torch

        return torch.zeros(len(clips), sum(d for _, d in self.streams))  # (g, D)


def raw_decode(videos: list[Path], settings, processes: int, threads: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of decoding the sampled frames of every video with decord alone in
    `processes` processes of `threads` decoder threads, started on the clock as the pipeline's."""
    from c2f.features.clips import group_sizes
    from c2f.video.layout import raw_decode as decode
    from c2f.video.layout import sampled_indices

    indices, size = sampled_indices(videos[0], settings.decode_fps, settings.decode_short_side)  # copies share it
    chunk = settings.frames_per_clip * group_sizes(settings)[1]  # the pipeline's decoding chunk
    return decode([(str(v), indices) for v in videos], size, processes, threads, chunk)


def pipeline_only(jobs: list[VideoJob], settings, workers: int, threads: int) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, cores of the main process) of the pipeline with no-op encoders."""
    import c2f.features.extract  # noqa: F401  (imported by any real run before its encoders load: not timed)
    from c2f.video.layout import cpu_seconds

    encoder = NoOpEncoder(settings)
    t, c, own = time.perf_counter(), cpu_seconds(), time.process_time()
    results = list(extract_many(jobs, settings, "cpu", workers=workers, encoder=encoder, threads=threads))
    wall = time.perf_counter() - t
    failed = [r.error for r in results if r.error]
    if failed:
        raise SystemExit(f"extraction failed: {failed[0]}")
    return wall, cpu_seconds() - c, (time.process_time() - own) / wall


def pipeline_efficiency(videos: list[Path], settings, workers: int, threads: int, repeats: int) -> dict:
    """Pipeline alone vs raw decoding of the same frames with as many processes, interleaved:
    efficiency = raw seconds / pipeline seconds (medians; 1.0 = the pipeline costs nothing)."""
    import statistics

    jobs = [VideoJob(v, v.stem) for v in videos]
    raw, pipe, raw_cpu, pipe_cpu, main_cores = [], [], [], [], []
    for _ in range(repeats):
        wall, cpu = raw_decode(videos, settings, workers, threads)
        raw.append(wall)
        raw_cpu.append(cpu)
        wall, cpu, cores = pipeline_only(jobs, settings, workers, threads)
        pipe.append(wall)
        pipe_cpu.append(cpu)
        main_cores.append(cores)
    med = statistics.median
    return {
        "decoder_threads": threads,
        "raw_decode_s": [round(x, 3) for x in raw],
        "pipeline_only_s": [round(x, 3) for x in pipe],
        "efficiency": round(med(raw) / med(pipe), 3),
        "efficiency_pairs_median": round(med(r / p for r, p in zip(raw, pipe, strict=True)), 3),
        # CPU seconds (every process): what a busy shared machine disturbs least
        "raw_decode_cpu_s": round(med(raw_cpu), 3),
        "pipeline_only_cpu_s": round(med(pipe_cpu), 3),
        "cpu_efficiency": round(med(raw_cpu) / med(pipe_cpu), 3),
        "main_process_cores_used": round(med(main_cores), 3),
    }


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


# What the extraction figures depend on (benchmarks/stale_results.py checks it against the tree)
EXTRACT_SOURCE = (
    "c2f/video/decode.py",
    "c2f/video/layout.py",
    "c2f/video/probe.py",
    "c2f/features/clips.py",
    "c2f/features/extract.py",
    "c2f/features/parallel.py",
    "c2f/features/shared_slots.py",
    "c2f/encoders",
)


def measured_code(paths: tuple[str, ...] = EXTRACT_SOURCE) -> dict:
    """The results' provenance (benchmarks/provenance.py): commit and hash of the measured source
    (in a copy without git, the GPU machine, the commit is $C2F_COMMIT)."""
    from provenance import provenance

    return provenance(paths)


def each_sampling(videos: list[Path], presets: tuple[str, ...], result: dict):
    """(video, its VideoInfo, preset name, settings, sampled frame indices, decoded size, the
    preset's dict in result["videos"][video]["presets"]) for every video and preset."""
    from c2f.features import get_preset
    from c2f.video import probe_video
    from c2f.video.layout import sampled_indices

    for video in videos:
        info = probe_video(video)
        entry: dict = {"size": f"{info.width}x{info.height}", "seconds": round(info.duration, 2), "presets": {}}
        result["videos"][video.name] = entry
        for name in presets:
            settings = get_preset(name)
            indices, size = sampled_indices(video, settings.decode_fps, settings.decode_short_side, info)
            yield video, info, name, settings, indices, size, entry["presets"].setdefault(name, {})


def bound_by(best_rtf: float, encoder: float | None, raw_decode: float | None, shared_cores: bool = False) -> str:
    """What the best run is within 80 % of: the encoders alone, or raw decoding of its frames with
    as many processes; neither means the pipeline itself (copies, queue, Python) holds it back.
    With `shared_cores` (CPU encoders) both use the same cores, so their ceiling together is
    1 / (1 / encoder + 1 / raw_decode): "encoder+decode" when the run is within 80 % of that."""
    if encoder is not None and best_rtf >= 0.8 * encoder:
        return "encoder"
    if raw_decode is not None and best_rtf >= 0.8 * raw_decode:
        return "decode"
    if shared_cores and encoder and raw_decode and best_rtf >= 0.8 / (1 / encoder + 1 / raw_decode):
        return "encoder+decode"
    return "pipeline"


def main() -> None:
    import torch
    from extract_speed import make_test_video, random_weight_settings

    from c2f import tuning
    from c2f.video import probe_video
    from c2f.video.layout import choose_layout

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--video", type=Path, help="copy this video instead of generating one (no ffmpeg needed)")
    ap.add_argument("--presets", default="clip-only,default")
    ap.add_argument("--workers", default=None, help="comma-separated counts (default 1, 2, 4, ... cores)")
    ap.add_argument("--repeats", type=int, default=1, help="interleaved pipeline-only / raw decoding pairs")
    ap.add_argument("--pipeline-only", action="store_true", help="only the pipeline without encoders vs raw decoding")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, help="JSON file (default benchmarks/results_extract_scale_<cpu|gpu>.json)")
    args = ap.parse_args()
    cores = available_cores()
    counts = [int(w) for w in args.workers.split(",")] if args.workers else worker_counts(cores)
    gpu = args.device.startswith("cuda")
    out = args.out or Path(__file__).parent / f"results_extract_scale_{'gpu' if gpu else 'cpu'}.json"
    with tempfile.TemporaryDirectory() as tmp:
        first = Path(tmp) / f"v000{args.video.suffix if args.video else '.mp4'}"
        if args.video:
            shutil.copyfile(args.video, first)
        else:
            make_test_video(first, args.seconds)
        videos = [first]
        for i in range(1, args.videos):  # same content, separate files (timing does not depend on it)
            videos.append(Path(tmp) / f"v{i:03d}{first.suffix}")
            shutil.copyfile(first, videos[-1])
        info = probe_video(first)
        total = info.duration * len(videos)
        result: dict = {
            "provenance": measured_code(),
            "device": torch.cuda.get_device_name(0) if gpu else "cpu",
            "cpu": tuning.cpu_model(),
            "cores": cores,
            "torch_threads": torch.get_num_threads(),
            "load_average_at_start": list(os.getloadavg()),
            "videos": len(videos),
            "video_seconds": round(info.duration, 2),
            "video_size": f"{info.width}x{info.height}",
            "weights": "random (full-size architectures; timing does not depend on weight values)",
            "repeats": args.repeats,
            "presets": {},
        }
        for name in args.presets.split(","):
            settings = random_weight_settings(name)
            jobs = [VideoJob(v, v.stem) for v in videos]
            entry: dict = {"pipeline_only": {}}
            result["presets"][name] = entry
            # The pipeline alone (no-op encoders) vs decord alone, same processes x threads (the
            # layout the tuner measures for that many cores): its efficiency.
            for w in counts:
                layout = choose_layout(first, settings.decode_fps, settings.decode_short_side, w, len(videos))
                eff = pipeline_efficiency(videos, settings, layout.workers, layout.threads, args.repeats)
                med_raw = sorted(eff["raw_decode_s"])[len(eff["raw_decode_s"]) // 2]
                entry["pipeline_only"][str(w)] = {
                    "workers": layout.workers,
                    "raw_decode_rtf": round(total / med_raw, 2),
                    **eff,
                }
                out.write_text(json.dumps(result, indent=2) + "\n")  # kept as it goes
            if args.pipeline_only:
                continue
            enc = encoder_rtf(settings, args.device)  # also loads and tunes the models: not in any timing
            wall, used = run_folder(jobs, settings, args.device, 0)
            entry.update(
                {
                    "encoder_rtf": round(enc, 1),
                    "one_at_a_time_rtf": round(total / wall, 2),
                    "one_at_a_time_cores_used": round(used, 2),
                    "workers": {},
                }
            )
            for w in counts:
                wall, used = run_folder(jobs, settings, args.device, w)
                entry["workers"][str(w)] = {"rtf": round(total / wall, 2), "main_process_cores_used": round(used, 2)}
                out.write_text(json.dumps(result, indent=2) + "\n")
            best_w, best = max(entry["workers"].items(), key=lambda kv: kv[1]["rtf"])
            entry["best_workers"] = int(best_w)
            entry["speedup_vs_one_at_a_time"] = round(best["rtf"] / entry["one_at_a_time_rtf"], 2)
            raw = entry["pipeline_only"].get(best_w, {}).get("raw_decode_rtf")
            entry["raw_decode_rtf_at_best"] = raw
            entry["bound_by"] = bound_by(best["rtf"], enc, raw, shared_cores=not gpu)
            out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

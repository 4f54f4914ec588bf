"""GPU decoding (NVDEC through PyNvVideoCodec, from pip) against decord on the CPU cores, on the
frames each preset samples, at 360p / 720p / 1080p (issue 19, item 3).

For each video and preset: decord alone in one process per core (c2f.video.layout.raw_decode, the
layout measured best on the H200 node: 16 x 1), and NVDEC decoding the same frame indices into
GPU memory as RGB, resized there to the preset's short side (what the encoders would get), with 1
and with several decoders at once (threads; an H200 has 7 NVDEC engines). Real-time factors =
seconds of video per wall second. The first frames of both are compared after resizing (other
scalers: not bit-identical; the mean difference says how far). C2F keeps CPU decoding unless this
shows NVDEC faster on the node; no GPU decoding path ships before it has been measured here.

Without a GPU (or without PyNvVideoCodec) the NVDEC rows are skipped with the reason, and the CPU
rows still run (`benchmarks/gpu_check.sh dry`).

    python benchmarks/gpu_decode.py VIDEO... [--streams 1,4,8] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from c2f.video.layout import available_cores, raw_decode

PRESETS = ("clip-only", "default")
CHUNK = 64  # frames per NVDEC batch


def nvdec_frames(path: str, indices: np.ndarray, size: tuple[int, int], keep: int = 0):
    """Decode `indices` with NVDEC into GPU memory, RGB, resized to `size` (width, height) on the
    GPU; returns the first `keep` frames as uint8 (keep, H, W, 3) on the CPU (for comparison)."""
    import PyNvVideoCodec as nvc
    import torch
    import torch.nn.functional as F

    decoder = nvc.SimpleDecoder(
        path, gpu_id=0, use_device_memory=True, output_color_type=nvc.OutputColorType.RGB
    )
    kept = []
    wanted = np.unique(indices).tolist()
    for s in range(0, len(wanted), CHUNK):
        frames = decoder.get_batch_frames_by_index(wanted[s : s + CHUNK])
        batch = torch.stack([torch.from_dlpack(f) for f in frames])  # (n, H, W, 3) uint8, GPU
        small = F.interpolate(
            batch.permute(0, 3, 1, 2).float(), size=(size[1], size[0]), mode="bilinear", antialias=True
        )  # (n, 3, h, w)
        if len(kept) < keep:
            kept.extend(small.round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()[: keep - len(kept)])
    torch.cuda.synchronize()
    return np.stack(kept) if kept else None


def nvdec_rtf(path: str, indices: np.ndarray, size: tuple[int, int], streams: int, seconds: float) -> float:
    """Seconds of video per wall second with `streams` decoders at once (one copy of the video each)."""
    start = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        list(pool.map(lambda _: nvdec_frames(path, indices, size), range(streams)))
    return streams * seconds / (time.perf_counter() - start)


def decord_first(path: str, indices: np.ndarray, size: tuple[int, int], keep: int) -> np.ndarray:
    import decord

    reader = decord.VideoReader(path, ctx=decord.cpu(0), width=size[0], height=size[1], num_threads=1)
    return reader.get_batch(np.unique(indices)[:keep].tolist()).asnumpy()


def nvdec_unavailable() -> str | None:
    try:
        import torch

        if not torch.cuda.is_available():
            return "no CUDA device"
        import PyNvVideoCodec  # noqa: F401
    except Exception as exc:  # not installed, or no NVDEC library in the driver
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def main() -> None:
    from extract_scale import each_sampling, measured_code

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--streams", default="1,4,8", help="NVDEC decoders at once")
    ap.add_argument("--copies", type=int, default=0, help="videos per CPU run (default: one per core)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results_gpu_decode.json")
    args = ap.parse_args()
    cores = available_cores()
    copies = args.copies or cores
    skipped = nvdec_unavailable()
    result: dict = {"provenance": measured_code(("c2f/video",)), "cores": cores, "nvdec": skipped or "PyNvVideoCodec", "videos": {}}
    for video, info, _, s, indices, size, row in each_sampling(args.videos, PRESETS, result):
        wall, _ = raw_decode([(str(video), indices)] * copies, size, cores, 1, s.frames_per_clip * 8)
        row.update({"cpu_decord_rtf": round(copies * info.duration / wall, 1), "cpu_layout": f"{cores} x 1"})
        if skipped is None:
            nvdec_frames(str(video), indices[:CHUNK], size)  # warm-up: CUDA context, decoder
            for n in (int(x) for x in args.streams.split(",")):
                row[f"nvdec_rtf_{n}_streams"] = round(nvdec_rtf(str(video), indices, size, n, info.duration), 1)
            gpu = nvdec_frames(str(video), indices, size, keep=8)
            cpu = decord_first(str(video), indices, size, 8)
            diff = np.abs(gpu.astype(np.int16) - cpu.astype(np.int16))
            row["frames_vs_decord"] = {"max_abs": int(diff.max()), "mean_abs": round(float(diff.mean()), 2)}
            best = max(v for k, v in row.items() if k.startswith("nvdec_rtf"))
            row["faster"] = "nvdec" if best > row["cpu_decord_rtf"] else "cpu"
        args.out.write_text(json.dumps(result, indent=1) + "\n")  # kept as it goes
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

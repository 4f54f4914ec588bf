"""Decode only what is needed? Frame-accurate seeking and skipping non-reference frames against
decoding every frame, on real footage re-encoded with 2-10 s GOPs (issue 19, item 2).

For each video and preset sampling (clip-only: 1 frame per 1.5 s; default: 16), the same sampled
frames (c2f.video.decode's rule: the frame on screen at t_k) are decoded, one decoder thread each:

- `decord` (C2F today): decord's get_batch on the sampled indices in the pipeline's chunks. decord
  decodes every frame from the GOP's keyframe on and colour-converts/scales only the sampled ones
  (it seeks to a later keyframe by itself when one lies before the next sample);
- `decord_all`: decord converting every frame too (what "decode every frame" would cost);
- `pyav_all`: PyAV (its own FFmpeg) decoding every packet, converting the sampled frames;
- `pyav_skip_nonref`: the same, but packets that are no sample are decoded with
  skip_frame=NONREF (frames nothing refers to are not decoded at all); frame-accurate;
- `pyav_seek_skip`: as `pyav_skip_nonref`, and seeking to the last keyframe at or before the
  next sample when it lies past the decoder's position; frame-accurate;
- `pyav_keyframes`: keyframes only (skip_frame=NONKEY): other frames, for scale only.

Frames of the PyAV paths are compared bit for bit with `pyav_all` (same decoder, same scaler), and
`pyav_all` with decord (another FFmpeg build and scaler). Times are CPU seconds of this process
(steadier than wall time on a shared machine) and wall seconds, medians of interleaved repeats.
PyAV is not a dependency of C2F: `pip install av` (into any folder on PYTHONPATH) to run those rows.

    python benchmarks/decode_seek.py VIDEO... [--repeats 3]
Prints one JSON object and saves benchmarks/results_decode_seek.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from c2f.features.clips import group_sizes

PRESETS = ("clip-only", "default")


def decord_sampled(path: str, indices: np.ndarray, size: tuple[int, int], chunk: int, convert_all: bool = False):
    import decord

    reader = decord.VideoReader(path, ctx=decord.cpu(0), width=size[0], height=size[1], num_threads=1)
    wanted = np.unique(indices)
    if convert_all:  # every frame up to the last sample converted and scaled
        every = np.arange(wanted[-1] + 1)
        kept = {}
        for s in range(0, len(every), chunk):
            batch = reader.get_batch(every[s : s + chunk].tolist()).asnumpy()
            for i, f in zip(every[s : s + chunk], batch, strict=True):
                if i in wanted:
                    kept[int(i)] = f
        return np.stack([kept[int(i)] for i in wanted])
    return np.concatenate([reader.get_batch(wanted[s : s + chunk].tolist()).asnumpy() for s in range(0, len(wanted), chunk)])


def _frame_pts(path: str) -> tuple[list[int], list[int]]:
    """(pts of every frame in presentation order, pts of the keyframes): the file's packet index."""
    import av

    with av.open(path) as box:
        stream = box.streams.video[0]
        pts, keys = [], []
        for packet in box.demux(stream):
            if packet.pts is None:
                continue
            pts.append(packet.pts)
            if packet.is_keyframe:
                keys.append(packet.pts)
    return sorted(pts), sorted(keys)


def pyav_sampled(path: str, indices: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """The sampled frames (one per distinct index, in order) decoded by PyAV in `mode`: "all",
    "skip_nonref", "seek_skip" or "keyframes" (every keyframe instead)."""
    import av

    all_pts, key_pts = _frame_pts(path)
    targets = sorted({all_pts[i] for i in np.unique(indices)})
    out: dict[int, np.ndarray] = {}
    with av.open(path) as box:
        stream = box.streams.video[0]
        ctx = stream.codec_context
        ctx.thread_count = 1
        if mode == "keyframes":
            ctx.skip_frame = "NONKEY"
            for frame in box.decode(stream):
                out[frame.pts] = frame.to_ndarray(width=size[0], height=size[1], format="rgb24")
            return np.stack([out[p] for p in sorted(out)])
        if mode == "seek_skip":  # the samples of each GOP, that GOP reached by a seek to its keyframe
            by_gop: dict[int, list[int]] = {}
            for t in targets:
                by_gop.setdefault(key_pts[np.searchsorted(key_pts, t, side="right") - 1], []).append(t)
            plan = list(by_gop.items())
        else:
            plan = [(None, targets)]
        for key, part in plan:
            if key is not None and key > all_pts[0]:
                box.seek(key, stream=stream, backward=True, any_frame=False)  # flushes the decoder
            want = set(part)
            for packet in box.demux(stream):
                if mode != "all":
                    ctx.skip_frame = "DEFAULT" if packet.pts in want else "NONREF"
                for frame in ctx.decode(packet):
                    if frame.pts in want:
                        out[frame.pts] = frame.to_ndarray(width=size[0], height=size[1], format="rgb24")
                if want.issubset(out):
                    break
    return np.stack([out[p] for p in targets])


def timed(fn):
    t, c = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results_decode_seek.json")
    args = ap.parse_args()
    from extract_scale import each_sampling, measured_code

    try:
        import av  # noqa: F401

        have_av = True
    except ImportError:
        have_av = False
    result: dict = {"provenance": measured_code(("c2f/video",)), "pyav": have_av, "repeats": args.repeats, "videos": {}}
    for video, _, _, s, indices, size, entry in each_sampling(args.videos, PRESETS, result):
        chunk = s.frames_per_clip * group_sizes(s)[1]
        path = str(video)
        job = (path, indices, size)
        methods = {
            "decord": lambda job=job, chunk=chunk: decord_sampled(*job, chunk),
            "decord_all": lambda job=job: decord_sampled(*job, 64, convert_all=True),
        }
        if have_av:
            for mode in ("all", "skip_nonref", "seek_skip", "keyframes"):
                methods[f"pyav_{mode}"] = lambda job=job, mode=mode: pyav_sampled(*job, mode)
        runs: dict[str, list[tuple[float, float]]] = {m: [] for m in methods}
        frames: dict[str, np.ndarray] = {}
        for _ in range(args.repeats):  # interleaved
            for m, fn in methods.items():
                got, wall, cpu = timed(fn)
                runs[m].append((wall, cpu))
                frames[m] = got
        base = statistics.median(c for _, c in runs["decord"])
        rows = {}
        for m in methods:
            cpu = statistics.median(c for _, c in runs[m])
            rows[m] = {
                "cpu_s": round(cpu, 3),
                "wall_s": round(statistics.median(w for w, _ in runs[m]), 3),
                "cpu_vs_decord": round(cpu / base, 3),
                "frames": len(frames[m]),
            }
        rows["decord_all"]["same_frames_as_decord"] = bool(np.array_equal(frames["decord_all"], frames["decord"]))
        if have_av:
            ref = frames["pyav_all"]
            for m in ("pyav_skip_nonref", "pyav_seek_skip"):
                rows[m]["same_frames_as_pyav_all"] = bool(np.array_equal(frames[m], ref))
            rows["pyav_all"]["same_frames_as_decord"] = bool(np.array_equal(ref, frames["decord"]))
            diff = np.abs(ref.astype(np.int16) - frames["decord"].astype(np.int16))
            rows["pyav_all"]["max_abs_diff_vs_decord"] = int(diff.max())
        entry.update({"sampled_frames": len(np.unique(indices)), "methods": rows})
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

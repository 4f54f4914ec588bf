"""How many decoding processes, and decord threads in each: chosen by measurement, not fixed.

Many videos decode in parallel across processes (one video each) almost perfectly, and across
frame threads within one video much less: on the H200 node's 16 cores decord alone reached 474x
real time as 16 processes x 1 thread, 442x as 16 x 4 and 182x as 4 x 4 (issue 19). Which split
of a core budget wins depends on the CPU, the codec and the frame size, so it is timed once per
machine and kind of video (`c2f.tuning.choose`, cached; `C2F_TUNE_DECODE_LAYOUT` pins it,
`C2F_DECODE_THREADS` pins the threads): each candidate decodes the same few seconds of the
sampled frames of the run's first video in as many processes at once, started before the clock.
`raw_decode` is that measurement, and the ceiling benchmarks/extract_scale.py compares the whole
pipeline with (decord alone, nothing kept).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from c2f.video.probe import VideoInfo, probe_video
from c2f.video.worker_process import check_parent, get_from_parent, wait_for_parent

LAYOUT_TASK = "decode-layout"  # c2f.tuning's task (pinned by C2F_TUNE_DECODE_LAYOUT)
TUNE_SECONDS = 6.0  # seconds of video a candidate process decodes per round
TUNE_ROUNDS = 3  # rounds per process: a longer run, steadier on a shared machine


@dataclass(frozen=True)
class DecodeLayout:
    workers: int  # decoding processes
    threads: int  # decord threads in each


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def sampled_indices(path: str | Path, fps: float, short_side: int, info: VideoInfo | None = None):
    """(source frame indices, (width, height)): the frames `iter_frames` decodes for this rate and
    size (its own sampling rule, c2f.video.decode), by decord's index of the file."""
    import decord

    from c2f.video.decode import frame_indices, output_size, sample_times

    info = info or probe_video(path)
    reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    pts = np.asarray(reader.get_frame_timestamp(np.arange(len(reader))), np.float64)[:, 0]
    return frame_indices(pts, sample_times(info.duration, fps)), output_size(info, short_side)


def _raw_decoder(tasks, done, start, width: int, height: int, threads: int, chunk: int) -> None:
    """A process of raw decoding: decord alone on the given frames, nothing kept; it ends when its
    parent does (c2f.video.worker_process)."""
    import decord

    wait_for_parent(start)
    while (task := get_from_parent(tasks)) is not None:
        path, indices = task
        reader = decord.VideoReader(path, ctx=decord.cpu(0), width=width, height=height, num_threads=threads)
        for s in range(0, len(indices), chunk):
            check_parent()
            reader.get_batch(np.unique(indices[s : s + chunk]).tolist()).asnumpy()
        done.put(path)


def raw_decode(
    tasks: list[tuple[str, np.ndarray]],
    size: tuple[int, int],
    processes: int,
    threads: int,
    chunk: int = 64,
    count_start: bool = True,
) -> tuple[float, float]:
    """(wall seconds, CPU seconds of every process) of decoding each (path, frame indices) task
    with decord alone in `processes` spawned processes of `threads` threads, `chunk` frames per
    call. `count_start`: the processes' start counts (as the pipeline's workers' does)."""
    ctx = mp.get_context("spawn")
    todo, done, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    for task in tasks:
        todo.put(task)
    for _ in range(processes):
        todo.put(None)
    procs = [
        ctx.Process(target=_raw_decoder, args=(todo, done, start, *size, threads, chunk), daemon=True)
        for _ in range(processes)
    ]
    t, c = time.perf_counter(), cpu_seconds()
    try:
        for p in procs:
            p.start()
        if not count_start:
            time.sleep(0.5 + 0.1 * processes)  # let them import decord before the clock
            t, c = time.perf_counter(), cpu_seconds()
        start.set()
        for _ in tasks:
            done.get(timeout=600)
        wall = time.perf_counter() - t
        for p in procs:
            p.join()
        return wall, cpu_seconds() - c
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()


def cpu_seconds() -> float:
    """CPU seconds of this process and of its ended, joined children."""
    import resource

    own, ended = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + ended.ru_utime + ended.ru_stime


def layout_candidates(budget: int, max_workers: int) -> list[dict[str, int]]:
    """Splits of `budget` cores into workers x threads (at most `max_workers` workers), one process
    per core first (the measured best with many videos), then fewer processes with more threads."""
    budget, max_workers = max(1, budget), max(1, max_workers)
    out: list[dict[str, int]] = []
    threads = 1
    while threads <= budget:
        workers = min(max_workers, max(1, budget // threads))
        cand = {"workers": workers, "threads": threads}
        if cand not in out:
            out.append(cand)
        threads *= 2
    return out


def choose_layout(
    path: str | Path, fps: float, short_side: int, budget: int, max_workers: int, info: VideoInfo | None = None
) -> DecodeLayout:
    """The fastest workers x threads for decoding videos like `path` on `budget` cores."""
    from c2f import tuning
    from c2f.video.decode import pinned_decode_threads

    check_decode_environment()
    threads = pinned_decode_threads()
    candidates = layout_candidates(budget, max_workers)
    if threads is not None:  # threads pinned: as many workers as the budget allows
        return DecodeLayout(min(max_workers, max(1, budget // threads)), threads)
    if len(candidates) == 1:
        return DecodeLayout(**candidates[0])
    info = info or probe_video(path)
    indices, size = sampled_indices(path, fps, short_side, info)
    indices = indices[: max(1, math.ceil(TUNE_SECONDS * fps))]
    seconds = len(indices) / fps

    def measure(cand: dict[str, int]) -> float:
        workers, threads = cand["workers"], cand["threads"]
        tasks = [(str(path), indices)] * (workers * TUNE_ROUNDS)
        wall, _ = raw_decode(tasks, size, workers, threads, count_start=False)
        return wall / len(tasks) / seconds  # wall seconds per second of video

    shape = f"{info.codec} {info.width}x{info.height}->{short_side} {fps:.4g}fps budget {budget} max {max_workers}"
    return DecodeLayout(**tuning.choose(LAYOUT_TASK, shape, candidates, measure).setting)


def check_decode_environment() -> None:
    """Read C2F_DECODE_THREADS and C2F_TUNE_DECODE_LAYOUT now: a bad value is one clear line before
    any video is read (EnvironmentSettingError), not each video's failure."""
    from c2f import tuning
    from c2f.video.decode import pinned_decode_threads

    pinned_decode_threads()
    override = tuning.env_override(LAYOUT_TASK)
    if override is not None and (
        not set(override) <= {"workers", "threads"}
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in override.values())
    ):
        name = tuning.env_name(LAYOUT_TASK)
        raise tuning.TuningOverrideError(
            f'{name}={os.environ.get(name)!r}: give a JSON object {{"workers": W, "threads": T}} of whole numbers >= 1'
        )

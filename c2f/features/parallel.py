"""Many videos at once on one machine: worker processes decode, the main process encodes.

Each worker takes one video at a time, probes and hashes it, and decodes it in groups of whole
clips exactly as the one-at-a-time path does (same chunking, same group sizes), so the encoders see
the same batches and the features are the same. A group travels through shared memory (one copy in
the worker, none through the pipe); the queue of groups is bounded, so at most `depth` decoded
groups wait while the encoders (GPU, or CPU where there is none) work in the main process.

With `workers == 0` nothing is started and the videos go one at a time through `extract_features`
(today's path; measured faster on a 2-core machine, where decoding and the CPU encoders already
share both cores: see BENCHMARKS.md).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing import shared_memory
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from c2f.errors import C2FError
from c2f.features.settings import FeatureSettings
from c2f.features.store import ClipFeatures, Subtitle

if TYPE_CHECKING:
    import torch

# progress(job index, seconds of that video done, its total seconds)
JobProgress = Callable[[int, float, float], None]

WORKERS_ENV = "C2F_DECODE_WORKERS"
_POLL_S = 1.0  # how often a waiting main process checks that its workers are alive


@dataclass(frozen=True)
class VideoJob:
    """One video to extract: its file, the id its features get, its subtitle cues, and its sha256
    when the caller has it (else the worker computes it)."""

    path: Path
    video_id: str
    subtitles: list[Subtitle] = field(default_factory=list)
    content_hash: str | None = None


@dataclass(frozen=True)
class JobResult:
    index: int  # position of the job in the list given
    features: ClipFeatures | None  # None when the video failed
    error: str | None  # the failure as one line (a C2FError's message), None on success


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def decode_workers(requested: int | None = None, device: str | None = None) -> int:
    """Decoding worker processes to use: `requested`, else $C2F_DECODE_WORKERS, else by machine.

    0 means today's one-at-a-time path. Chosen by measurement (benchmarks/extract_scale.py): on 2
    cores the CPU encoders and the decoder already keep both cores busy and workers only add
    process and copy costs, so 0; with a GPU the encoders wait on decoding, so every core but the
    one feeding the GPU decodes; CPU-only machines with more cores give decoding a quarter of them.
    """
    if requested is None and os.environ.get(WORKERS_ENV, "").strip():
        try:
            requested = int(os.environ[WORKERS_ENV])
        except ValueError:
            raise C2FError(f"${WORKERS_ENV}={os.environ[WORKERS_ENV]!r} is not a number of workers") from None
    if requested is not None:
        return max(0, requested)
    cores = available_cores()
    if cores <= 2:
        return 0
    from c2f.device import pick_device

    if pick_device(device).type == "cuda":
        return cores - 1
    return max(1, cores // 4)


# (jobs, settings, device, progress) -> results as videos finish: what the library's add loop runs
Extractor = Callable[[Sequence["VideoJob"], FeatureSettings, Any, "JobProgress | None"], Iterator["JobResult"]]
ENGINES = ("local", "ray")


def make_extractor(engine: str = "local", workers: int | None = None, address: str | None = None) -> Extractor | None:
    """How a folder is extracted: None for today's one-at-a-time path (local engine, 0 workers),
    local decoding workers, or Ray (started here, or the cluster at `address`)."""
    if engine == "ray":
        from c2f.features.ray_extract import connect, extract_many_ray

        connect(address)
        return lambda jobs, settings, device, progress: extract_many_ray(jobs, settings, device, progress)
    if engine != "local":
        raise C2FError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")
    if address is not None:
        raise C2FError("--address goes with --engine ray")
    n = decode_workers(workers)
    if n == 0:
        return None
    return lambda jobs, settings, device, progress: extract_many(jobs, settings, device, n, progress)


def extract_many(
    jobs: Sequence[VideoJob],
    settings: FeatureSettings,
    device: torch.device | str | None = None,
    workers: int = 0,
    progress: JobProgress | None = None,
    depth: int | None = None,
) -> Iterator[JobResult]:
    """Features of every job, yielded as each video finishes (not in job order); a video that
    cannot be used yields its error and the others go on. `workers == 0`: one at a time here."""
    if workers <= 0 or settings.extraction == "value" or len(jobs) < 2:
        yield from _one_at_a_time(jobs, settings, device, progress)
        return
    yield from _with_workers(jobs, settings, device, min(workers, len(jobs)), progress, depth)


def _one_at_a_time(
    jobs: Sequence[VideoJob], settings: FeatureSettings, device: Any, progress: JobProgress | None
) -> Iterator[JobResult]:
    from c2f.features.extract import extract_features

    for i, job in enumerate(jobs):
        report = (lambda done, total, i=i: progress(i, done, total)) if progress else None
        try:
            feats = extract_features(
                job.path, settings, job.video_id, job.subtitles, device, report, content_hash=job.content_hash
            )
        except C2FError as exc:
            yield JobResult(i, None, str(exc))
            continue
        yield JobResult(i, feats, None)


def _with_workers(
    jobs: Sequence[VideoJob],
    settings: FeatureSettings,
    device: Any,
    workers: int,
    progress: JobProgress | None,
    depth: int | None,
) -> Iterator[JobResult]:
    import torch

    from c2f.features.extract import ClipGroupEncoder, assemble_features

    encoder = ClipGroupEncoder(settings, device)  # loaded before the workers start their decoders
    ctx = mp.get_context("spawn")  # no fork of a process holding torch threads and CUDA
    tasks = ctx.Queue()
    results = ctx.Queue(maxsize=depth or 2 * workers + 1)  # bounded: decoded groups waiting
    for i, job in enumerate(jobs):
        tasks.put((i, str(job.path), job.content_hash is None))
    for _ in range(workers):
        tasks.put(None)
    procs = [
        ctx.Process(
            target=_decode_worker,
            args=(tasks, results, settings, encoder.group, encoder.first_group),
            daemon=True,
            name=f"c2f-decode-{w}",
        )
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    # job index -> [VideoInfo, sha256, encoded groups (g, D), clips done]; failed: skip its groups
    open_videos: dict[int, list] = {}
    failed: set[int] = set()
    finished = 0
    try:
        while finished < len(jobs):
            index, kind, payload = _next_message(results, procs)
            if kind == "start":
                open_videos[index] = [payload[0], payload[1], [], 0]
            elif kind == "group":
                shm, clips = _attach(payload)
                try:
                    if index in failed:
                        continue
                    state = open_videos[index]
                    try:
                        state[2].append(encoder.encode(clips))  # (g, D)
                    except Exception as exc:  # this video's failure, never the run's
                        failed.add(index)
                        open_videos.pop(index)
                        finished += 1
                        yield JobResult(index, None, _one_line(exc))
                        continue
                    state[3] += len(clips)
                    if progress:
                        info = state[0]
                        progress(index, min(state[3] * settings.clip_seconds, info.duration), info.duration)
                finally:
                    shm.close()
                    shm.unlink()
            elif kind == "done":
                if index in failed:
                    continue
                info, digest, parts, _ = open_videos.pop(index)
                job = jobs[index]
                feats = assemble_features(
                    job.path,
                    settings,
                    info,
                    torch.cat(parts).numpy(),
                    encoder.streams,
                    job.video_id,
                    list(job.subtitles),
                    job.content_hash or digest,
                )
                finished += 1
                yield JobResult(index, feats, None)
            else:  # "error": probing or decoding failed
                open_videos.pop(index, None)
                if index not in failed:
                    finished += 1
                    yield JobResult(index, None, payload)
    finally:
        _stop(procs, tasks, results)


def _next_message(results: Any, procs: list) -> tuple[int, str, Any]:
    """The next message of the workers; C2FError when one died (killed, out of memory) instead of
    waiting for ever on a message that will not come."""
    while True:
        try:
            return results.get(timeout=_POLL_S)
        except queue.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise C2FError(
                    f"decoding worker {dead[0].name} died (exit code {dead[0].exitcode})"
                ) from None


def _stop(procs: list, tasks: Any, results: Any) -> None:
    """End the workers and free the shared memory of groups nobody will encode."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=10)
    while True:
        try:
            _, kind, payload = results.get_nowait()
        except (queue.Empty, OSError, ValueError):
            break
        if kind == "group":
            shm, _ = _attach(payload)
            shm.close()
            shm.unlink()
    for q in (tasks, results):
        q.close()
        q.cancel_join_thread()


def _one_line(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, C2FError) else f"{type(exc).__name__}: {exc}"


def _share(array: np.ndarray) -> tuple[str, tuple[int, ...]]:
    """Copy a uint8 array into a new shared-memory block; the receiver unlinks it."""
    shm = shared_memory.SharedMemory(create=True, size=max(1, array.nbytes))
    np.ndarray(array.shape, np.uint8, buffer=shm.buf)[...] = array
    name = shm.name
    shm.close()
    return name, array.shape


def _attach(shared: tuple[str, tuple[int, ...]]) -> tuple[shared_memory.SharedMemory, np.ndarray]:
    name, shape = shared
    shm = shared_memory.SharedMemory(name=name)
    return shm, np.ndarray(shape, np.uint8, buffer=shm.buf)


def _decode_worker(tasks: Any, results: Any, settings: FeatureSettings, group: int, first_group: int) -> None:
    """Worker process: probe, hash and decode videos in groups of whole clips until told to stop."""
    from c2f.features.clips import clip_count, clip_groups, file_sha256
    from c2f.video import probe_video

    while (task := tasks.get()) is not None:
        index, path, want_hash = task
        try:
            info = probe_video(path)  # first: a missing or unreadable file gets the probe's typed error
            digest = file_sha256(path) if want_hash else None
            results.put((index, "start", (info, digest)))
            n_clips = clip_count(info.duration, settings)
            for clips in clip_groups(path, settings, info, n_clips, group, first_group):
                results.put((index, "group", _share(clips)))
            results.put((index, "done", None))
        except Exception as exc:  # this video's failure: reported, the worker goes on
            results.put((index, "error", _one_line(exc)))


def extract_to_dir_parallel(
    videos: list[Path],
    out_dir: Path,
    settings: FeatureSettings,
    device: Any,
    subtitles: Path | None,
    progress: JobProgress | None,
    on_outcome: Callable[[Any], None] | None,
    workers: int,
) -> list:
    """`extract_to_dir` with decoding workers: the same files and outcomes (in the videos' order)."""
    from c2f.features.extract import ExtractOutcome, _subtitles_for, unique_stems
    from c2f.features.store import save_features
    from c2f.features.subtitles import read_subtitles

    outcomes: dict[int, ExtractOutcome] = {}
    jobs: list[VideoJob] = []
    job_video: list[int] = []  # job -> index of its video
    for i, (video, video_id) in enumerate(zip(videos, unique_stems(videos), strict=True)):
        try:
            subs_file = _subtitles_for(video, subtitles, single=len(videos) == 1)
            subs = read_subtitles(subs_file) if subs_file is not None else []
        except C2FError as exc:
            outcomes[i] = ExtractOutcome(video, None, str(exc))
            if on_outcome:
                on_outcome(outcomes[i])
            continue
        jobs.append(VideoJob(video, video_id, subs))
        job_video.append(i)
    report = (lambda j, done, total: progress(job_video[j], done, total)) if progress else None
    for result in extract_many(jobs, settings, device, workers, report):
        i = job_video[result.index]
        if result.features is None:
            outcome = ExtractOutcome(videos[i], None, result.error)
        else:
            path = out_dir / f"{result.features.video_id}.safetensors"
            outcome = ExtractOutcome(videos[i], save_features(result.features, path), None)
        outcomes[i] = outcome
        if on_outcome:
            on_outcome(outcome)
    return [outcomes[i] for i in range(len(videos))]

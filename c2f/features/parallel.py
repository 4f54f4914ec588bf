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
import queue
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from c2f.environment import EnvironmentSettingError, env_int
from c2f.errors import C2FError
from c2f.features.settings import FeatureSettings
from c2f.features.shared_slots import SlotReader, SlotSet, WorkerSlots
from c2f.features.store import ClipFeatures, Subtitle
from c2f.video.layout import available_cores, choose_layout
from c2f.video.worker_process import get_from_parent

if TYPE_CHECKING:
    import torch

class GroupEncoder(Protocol):
    """What encodes decoded groups of whole clips: c2f.features.extract.ClipGroupEncoder."""

    group: int  # clips per call
    first_group: int  # clips in the first call of a video
    streams: list[tuple[str, int]]

    def encode(self, clips: np.ndarray) -> torch.Tensor: ...  # uint8 (g, per_clip, H, W, 3) -> (g, D)


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


def decode_workers(requested: int | None = None, device: str | None = None) -> int:
    """Decoding worker processes to use: `requested`, else $C2F_DECODE_WORKERS, else by machine.

    0 means today's one-at-a-time path. Chosen by measurement (benchmarks/extract_scale.py): on 2
    cores the CPU encoders and the decoder already keep both cores busy and workers only add
    process and copy costs, so 0; with a GPU the encoders wait on decoding, so every core but the
    one feeding the GPU decodes; CPU-only machines with more cores give decoding a quarter of them.
    """
    if requested is None:
        requested = env_int(WORKERS_ENV, None, minimum=0)
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
    encoder: GroupEncoder | None = None,
    threads: int | None = None,
) -> Iterator[JobResult]:
    """Features of every job, yielded as each video finishes (not in job order); a video that
    cannot be used yields its error and the others go on. `workers == 0`: one at a time here.
    `encoder`: what encodes the decoded groups in this process (default: the preset's encoders;
    benchmarks/extract_scale.py passes a no-op one to time the pipeline alone). `threads`: decoder
    threads per worker (None: `workers` is the core budget, split into processes x threads by
    measurement, c2f.video.layout.choose_layout). `depth`: decoded groups each
    worker may have waiting (shared blocks per worker, default 2)."""
    if workers <= 0 or settings.extraction == "value" or len(jobs) < 2:
        yield from _one_at_a_time(jobs, settings, device, progress)
        return
    yield from _with_workers(jobs, settings, device, workers, progress, depth, encoder, threads)


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
    encoder: GroupEncoder | None,
    threads: int | None,
) -> Iterator[JobResult]:
    import torch

    from c2f.features.extract import ClipGroupEncoder, assemble_features

    if encoder is None:
        encoder = ClipGroupEncoder(settings, device)  # loaded before the workers start their decoders
    if threads is None:  # the budget of `workers` cores split into processes x threads by measurement
        workers, threads = _layout(jobs, settings, workers)
    workers = min(workers, len(jobs))
    ctx = mp.get_context("spawn")  # no fork of a process holding torch threads and CUDA
    tasks, results = ctx.Queue(), ctx.Queue()  # groups in flight are bounded by the slots
    slots = SlotSet.new(workers, max(1, depth or 2))
    returned = [ctx.Queue() for _ in range(workers)]  # slots handed back, one queue per worker
    reader = SlotReader(slots, returned)
    for i, job in enumerate(jobs):
        tasks.put((i, str(job.path), job.content_hash is None))
    for _ in range(workers):
        tasks.put(None)
    procs = [
        ctx.Process(
            target=_decode_worker,
            args=(tasks, results, settings, encoder.group, encoder.first_group, slots, w, returned[w], threads),
            daemon=True,
            name=f"c2f-decode-{w}",
        )
        for w in range(workers)
    ]
    # job index -> [VideoInfo, sha256, encoded groups (g, D), clips done]; failed: skip its groups
    open_videos: dict[int, list] = {}
    failed: set[int] = set()
    finished = 0
    try:
        for p in procs:
            p.start()
        while finished < len(jobs):
            index, kind, payload = _next_message(results, procs)
            if kind == "start":
                open_videos[index] = [payload[0], payload[1], [], 0]
            elif kind == "group":
                try:
                    if index in failed:
                        continue
                    state = open_videos[index]
                    try:
                        state[2].append(encoder.encode(reader.view(payload)))  # (g, D)
                    except Exception as exc:  # this video's failure, never the run's
                        failed.add(index)
                        open_videos.pop(index)
                        finished += 1
                        yield JobResult(index, None, _one_line(exc))
                        continue
                    state[3] += payload[3][0]
                    if progress:
                        info = state[0]
                        progress(index, min(state[3] * settings.clip_seconds, info.duration), info.duration)
                finally:
                    reader.release(payload)
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
    finally:  # every exit: done, an error, a cancel (generator closed), a dead worker
        _stop(procs, [tasks, results, *returned])
        reader.unlink_all()


def _layout(jobs: Sequence[VideoJob], settings: FeatureSettings, budget: int) -> tuple[int, int]:
    """(workers, threads) measured on the first videos that decode; one per core if none does."""
    for job in jobs[:3]:
        try:
            layout = choose_layout(job.path, settings.decode_fps, settings.decode_short_side, budget, len(jobs))
        except EnvironmentSettingError:  # the run's error, not this video's
            raise
        except Exception:  # an unusable video: its own error comes from the worker that takes it
            continue
        return layout.workers, layout.threads
    return min(budget, len(jobs)), 1


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


def _stop(procs: list, queues: list) -> None:
    """End the workers (their blocks are unlinked by the caller, whose names they are)."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        if p.pid is not None:
            p.join(timeout=10)
        if p.is_alive():
            p.kill()
            p.join(timeout=10)
    for q in queues:
        q.close()
        q.cancel_join_thread()


def _one_line(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, C2FError) else f"{type(exc).__name__}: {exc}"


def _decode_worker(
    tasks: Any,
    results: Any,
    settings: FeatureSettings,
    group: int,
    first_group: int,
    slots: SlotSet,
    worker: int,
    returned: Any,
    threads: int | None,
) -> None:
    """Worker process: probe, hash and decode videos in groups of whole clips, each group written
    once into a shared block of this worker, until told to stop."""
    from c2f.features.clips import clip_count, clip_groups, file_sha256
    from c2f.video import probe_video
    from c2f.video.decode import output_size

    blocks = WorkerSlots(slots, worker, returned)
    while (task := get_from_parent(tasks)) is not None:
        index, path, want_hash = task
        try:
            info = probe_video(path)  # first: a missing or unreadable file gets the probe's typed error
            digest = file_sha256(path) if want_hash else None
            results.put((index, "start", (info, digest)))
            n_clips = clip_count(info.duration, settings)
            width, height = output_size(info, settings.decode_short_side)
            blocks.reserve = group * settings.frames_per_clip * height * width * 3
            for clips in clip_groups(path, settings, info, n_clips, group, first_group, blocks.take, threads):
                results.put((index, "group", blocks.message(clips.shape)))
                del clips  # the receiver hands the slot back; no view of it kept here
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

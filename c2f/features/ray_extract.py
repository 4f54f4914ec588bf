"""Extraction on Ray (optional extra `c2f[ray]`): the same work as c2f.features.parallel as a Ray
Data pipeline, on this machine or a cluster.

  videos --(CPU tasks: probe, hash, decode in groups of whole clips)--> groups
         --(encoder actors holding the models, one GPU each where there are GPUs)--> vectors
         --> the driver, which assembles each video's features as its last group arrives

The driver is the only writer: the caller (the library's add loop, `extract_to_dir`) writes the
feature file and the catalog row of each video as it is yielded, so a killed run resumes as a local
one does. Ray retries tasks and restarts actors whose process died; a video whose block still fails
is yielded as failed (recorded like any bad video) and the others go on. Decoding uses the same
chunking and group sizes as the one-at-a-time path, so the features are the same.

Nodes of a cluster need c2f installed (or the checkout on their PYTHONPATH) and ffmpeg.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from c2f.errors import C2FError
from c2f.features.parallel import JobProgress, JobResult, VideoJob, _one_line
from c2f.features.settings import FeatureSettings

RETRIES = 3  # tries of a task or actor whose process died, before its video counts as failed


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """ray.init: a local Ray (None) or a cluster ("auto", "ray://HOST:PORT"); True when this call
    started it. C2FError naming the way out when Ray is not installed."""
    try:
        import ray
    except ImportError:
        raise C2FError(
            "--engine ray needs Ray: pip install 'c2f[ray]' (or pip install -r requirements-ray.txt)"
        ) from None
    if ray.is_initialized():
        return False
    import c2f

    # Local workers import c2f from this checkout even when it is not installed.
    root = str(Path(c2f.__file__).resolve().parents[1])
    runtime_env = {"env_vars": {"PYTHONPATH": root}} if address is None else None
    try:
        ray.init(
            address=address, num_cpus=num_cpus, runtime_env=runtime_env, log_to_driver=False, include_dashboard=False
        )
    except ConnectionError as exc:
        raise C2FError(f"cannot reach the Ray cluster at {address}: {exc}") from None
    return True


def _decode_video(row: dict, settings: dict, group: int, first_group: int) -> Iterator[dict]:
    """Ray Data flat_map: one video row -> rows of decoded groups, then a 'done' row (or an 'error'
    row: the video's failure, never the pipeline's)."""
    from c2f.features.clips import clip_count, clip_groups, file_sha256
    from c2f.video import probe_video

    preset = FeatureSettings.from_dict(settings)
    index, path = int(row["index"]), str(row["path"])
    try:
        info = probe_video(path)  # first: a missing or unreadable file gets the probe's typed error
        digest = file_sha256(path) if row["want_hash"] else ""
        meta = json.dumps({"info": asdict(info), "digest": digest})
        seq = 0
        for clips in clip_groups(path, preset, info, clip_count(info.duration, preset), group, first_group):
            yield _row(index, "group", seq, "", clips)
            seq += 1
        yield _row(index, "done", seq, meta, None)
    except Exception as exc:  # recorded for this video; the pipeline goes on
        yield _row(index, "error", 0, _one_line(exc), None)


def _row(index: int, kind: str, seq: int, text: str, array: np.ndarray | None) -> dict:
    # One schema for every row (Arrow blocks): arrays travel as bytes + shape.
    data = b"" if array is None else np.ascontiguousarray(array).tobytes()
    shape = [] if array is None else list(array.shape)
    return {"index": index, "kind": kind, "seq": seq, "text": text, "data": data, "shape": shape}


class _Encode:
    """Ray Data actor: holds the encoders; a group of clips uint8 (g, per_clip, H, W, 3) -> its
    vectors float32 (g, D); other rows pass through."""

    def __init__(self, settings: dict, device: str) -> None:
        from c2f.features.extract import ClipGroupEncoder

        self.encoder = ClipGroupEncoder(FeatureSettings.from_dict(settings), device)

    def __call__(self, row: dict) -> dict:
        if row["kind"] != "group":
            return row
        clips = np.frombuffer(row["data"], np.uint8).reshape([int(d) for d in row["shape"]])
        try:
            vectors = self.encoder.encode(clips).float().numpy()  # (g, D)
        except Exception as exc:  # this video's failure
            return _row(int(row["index"]), "error", 0, _one_line(exc), None)
        streams = json.dumps(self.encoder.streams)
        return _row(int(row["index"]), "vectors", int(row["seq"]), streams, vectors)


def extract_many_ray(
    jobs: Sequence[VideoJob],
    settings: FeatureSettings,
    device: str | None = None,
    progress: JobProgress | None = None,
) -> Iterator[JobResult]:
    """Features of every job through Ray Data (ray.init first, or `connect`), yielded as each video
    finishes; failures yielded as errors. Encoder actors: one per GPU of the cluster, else one."""
    import ray

    from c2f.features.clips import group_sizes
    from c2f.features.extract import assemble_features
    from c2f.video import VideoInfo

    if not jobs:
        return
    if settings.extraction == "value":
        raise C2FError(
            "--engine ray does not run the 'value' preset (its own decoding): use the local engine"
        )
    gpus = int(ray.cluster_resources().get("GPU", 0))
    group, first_group = group_sizes(settings)
    ctx = ray.data.DataContext.get_current()
    ctx.max_errored_blocks = len(jobs)  # a video whose block fails for good is skipped, not the run
    items = [
        {"index": i, "path": str(j.path), "want_hash": j.content_hash is None} for i, j in enumerate(jobs)
    ]
    ds = ray.data.from_items(items, override_num_blocks=len(jobs))  # one video per block
    ds = ds.flat_map(
        _decode_video,
        fn_kwargs={"settings": settings.to_dict(), "group": group, "first_group": first_group},
        num_cpus=1,
        max_retries=RETRIES,
    )
    ds = ds.map(
        _Encode,
        fn_constructor_args=(settings.to_dict(), "cuda" if gpus else (device or "cpu")),
        concurrency=max(1, gpus),
        num_gpus=1 if gpus else 0,
        num_cpus=1,
        max_restarts=RETRIES,
        max_task_retries=RETRIES,
    )
    streams: list[tuple[str, int]] = []  # the encoders' (name, dim), told by the actors
    parts: dict[int, dict[int, np.ndarray]] = {}  # job -> {group seq: (g, D)}
    done_meta: dict[int, tuple[int, dict]] = {}  # job -> (number of groups, probe + hash)
    finished: set[int] = set()
    for row in ds.iter_rows():
        index, kind = int(row["index"]), row["kind"]
        if index in finished:
            continue
        if kind == "error":
            finished.add(index)
            parts.pop(index, None)
            yield JobResult(index, None, row["text"])
            continue
        if kind == "vectors":
            shape = [int(d) for d in row["shape"]]
            streams = [(name, int(dim)) for name, dim in json.loads(row["text"])]
            parts.setdefault(index, {})[int(row["seq"])] = np.frombuffer(row["data"], np.float32).reshape(
                shape
            )
        else:  # "done": its groups may still be on their way
            done_meta[index] = (int(row["seq"]), json.loads(row["text"]))
        got = parts.get(index, {})
        if progress and kind == "vectors" and index in done_meta:
            progress(index, len(got), done_meta[index][0])
        if index in done_meta and len(got) == done_meta[index][0]:
            n_groups, meta = done_meta.pop(index)
            info = VideoInfo(**meta["info"])
            job = jobs[index]
            vectors = np.concatenate([got[s] for s in range(n_groups)])  # (N, D)
            feats = assemble_features(
                job.path,
                settings,
                info,
                vectors,
                streams,
                job.video_id,
                list(job.subtitles),
                job.content_hash or meta["digest"],
            )
            finished.add(index)
            parts.pop(index, None)
            yield JobResult(index, feats, None)
    for index in range(len(jobs)):  # blocks Ray gave up on after its retries
        if index not in finished:
            yield JobResult(
                index, None, f"{jobs[index].path}: the Ray workers failed on this video ({RETRIES} retries)"
            )

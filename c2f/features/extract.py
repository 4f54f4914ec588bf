"""Video file -> ClipFeatures: decode in chunks, encode clips in batches, decoding overlapped with encoding.

One vector per `clip_seconds` clip (N = ceil(duration / clip_seconds), at least 1). CLIP sees
`clip_frames_per_clip` evenly spaced frames of the clip (embeddings averaged), S3D sees
`s3d_frames_per_clip`; the tail clip is padded by repeating the last frame. Each stream is
L2-normalised, then the streams are concatenated [clip | s3d].
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from c2f.encoders.registry import create_clip_encoder, create_s3d_encoder
from c2f.errors import C2FError, SubtitleError
from c2f.features.clips import clip_count, file_sha256, group_sizes
from c2f.features.clips import clip_groups as _clip_groups
from c2f.features.clips import even_positions as _even_positions
from c2f.features.settings import FeatureSettings
from c2f.features.store import ClipFeatures, Subtitle, VideoMeta, save_features
from c2f.features.subtitles import find_sidecar_subtitles, read_subtitles
from c2f.video import VideoInfo, probe_video

ProgressFn = Callable[[float, float], None]  # (seconds of video done, total seconds)


def _prefetch(it: Iterator[np.ndarray], depth: int = 2) -> Iterator[np.ndarray]:
    """Run `it` in a thread (decoding releases the GIL) so decoding overlaps encoding.

    At most `depth` groups wait in the queue (bounded memory). When the consumer stops early (an
    encoder error, a closed generator) the thread is told to stop and joined, so no decoder is
    left running in the background of a long CLI run.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in it:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # re-raised in the consumer
            put(exc)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()  # releases the decoder (generator cleanup)

    thread = threading.Thread(target=work, daemon=True, name="c2f-decode")
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=30)


def extract_features(
    path: str | Path,
    settings: FeatureSettings,
    video_id: str | None = None,
    subtitles: str | Path | list[Subtitle] | None = None,
    device: torch.device | str | None = None,
    progress: ProgressFn | None = None,
    clips_per_batch: int | None = None,
    info: VideoInfo | None = None,
    content_hash: str | None = None,
) -> ClipFeatures:
    """Extract clip features of one video; raises a typed VideoError for unusable files.

    `info` (its probe) and `content_hash` (its sha256), when the caller has them already, are not
    computed again.
    """
    path = Path(path)
    info = info or probe_video(path)
    if subtitles is None:
        subtitles = find_sidecar_subtitles(path)
    subs = read_subtitles(subtitles) if isinstance(subtitles, (str, Path)) else list(subtitles or [])
    if settings.extraction == "value":  # VALUE/HERO's own decoding and sampling
        from c2f.features.value import extract_value_features

        digest = content_hash or file_sha256(path)
        return extract_value_features(path, settings, video_id or path.stem, subs, info, digest, device, progress)

    n_clips = clip_count(info.duration, settings)
    encoder = ClipGroupEncoder(settings, device, clips_per_batch)
    parts = []
    done = 0
    groups = _clip_groups(str(path), settings, info, n_clips, encoder.group, encoder.first_group)
    for clips in _prefetch(groups):
        parts.append(encoder.encode(clips))  # (g, D)
        done += len(clips)
        if progress:
            progress(min(done * settings.clip_seconds, info.duration), info.duration)
    return assemble_features(
        path, settings, info, torch.cat(parts).numpy(), encoder.streams, video_id, subs, content_hash
    )


class ClipGroupEncoder:
    """The encoders of a preset applied to groups of whole clips, uint8 (g, per_clip, H, W, 3) ->
    (g, D): each stream L2-normalised, concatenated in `streams` order."""

    def __init__(
        self, settings: FeatureSettings, device: torch.device | str | None = None, clips_per_batch: int | None = None
    ) -> None:
        self.clip_enc = create_clip_encoder(settings, device)
        self.s3d_enc = create_s3d_encoder(settings, device) if settings.uses_s3d else None
        per_clip = settings.frames_per_clip
        self.clip_pos = _even_positions(settings.clip_frames_per_clip, per_clip)
        self.s3d_pos = _even_positions(settings.s3d_frames_per_clip, per_clip) if self.s3d_enc else None
        self.group, self.first_group = group_sizes(settings, clips_per_batch)
        self.streams = [("clip", self.clip_enc.image_dim)]
        if self.s3d_enc is not None:
            self.streams.append(("s3d", self.s3d_enc.dim))

    def encode(self, clips: np.ndarray) -> torch.Tensor:
        g = len(clips)  # clips: (g, per_clip, H, W, 3)
        img = self.clip_enc.encode_images(clips[:, self.clip_pos].reshape(-1, *clips.shape[2:]))  # (g*c, d)
        parts = [F.normalize(img.view(g, len(self.clip_pos), -1).mean(1), dim=-1)]  # (g, d)
        if self.s3d_enc is not None:
            parts.append(F.normalize(self.s3d_enc.encode_clips(clips[:, self.s3d_pos]), dim=-1))  # (g, 1024)
        return torch.cat(parts, dim=1)


def assemble_features(
    path: Path,
    settings: FeatureSettings,
    info: VideoInfo,
    features: np.ndarray,
    streams: list[tuple[str, int]],
    video_id: str | None,
    subs: list[Subtitle],
    content_hash: str | None,
) -> ClipFeatures:
    """ClipFeatures of one video from its encoded clips `features` (N, D)."""
    cs = settings.clip_seconds
    starts = np.arange(len(features)) * cs
    clip_times = np.stack([starts, np.minimum(starts + cs, info.duration)], axis=1)
    meta = VideoMeta(
        source_name=path.name,
        content_hash=content_hash or file_sha256(path),
        duration=info.duration,
        fps=info.fps,
        width=info.width,
        height=info.height,
    )
    return ClipFeatures(
        video_id=video_id or path.stem,
        features=features,
        clip_times=clip_times,
        streams=list(streams),
        settings=settings,
        video=meta,
        subtitles=subs,
    )


@dataclass(frozen=True)
class ExtractOutcome:
    video: Path
    output: Path | None  # the feature file written, None when the video failed
    error: str | None  # why it failed (a typed C2FError message), None on success


def _subtitles_for(video: Path, subtitles: Path | None, single: bool) -> Path | None:
    """An explicit file (one video only), a folder holding `<stem>.srt/.vtt`, or the sidecar."""
    if subtitles is None:
        return find_sidecar_subtitles(video)
    if subtitles.is_dir():
        return find_sidecar_subtitles(subtitles / video.name)
    if not single:
        raise SubtitleError(f"{subtitles}: one subtitle file given for several videos; give a folder")
    return subtitles


def extract_to_dir(
    paths: list[str | Path],
    out_dir: str | Path,
    settings: FeatureSettings,
    device: torch.device | str | None = None,
    subtitles: str | Path | None = None,
    progress: Callable[[int, float, float], None] | None = None,
    on_outcome: Callable[[ExtractOutcome], None] | None = None,
    workers: int | None = None,
) -> list[ExtractOutcome]:
    """Extract every video into `out_dir/<stem>.safetensors`; a bad video is recorded and skipped.

    `progress(video_index, done_seconds, total_seconds)` reports within-video progress. Two videos
    with the same stem (from different folders) get `<stem>-2`, `<stem>-3`, ... instead of
    overwriting each other. `workers`: decoding processes (c2f.features.parallel; None: chosen by
    the machine, 0: one video at a time); the files are the same either way.
    """
    out_dir = Path(out_dir)
    subs_path = Path(subtitles) if subtitles is not None else None
    videos = [Path(p) for p in paths]
    from c2f.features.parallel import decode_workers, extract_to_dir_parallel
    from c2f.video.layout import check_decode_environment

    check_decode_environment()
    n_workers = decode_workers(workers, str(device) if device is not None else None)
    if n_workers > 0 and len(videos) > 1 and settings.extraction != "value":
        return extract_to_dir_parallel(videos, out_dir, settings, device, subs_path, progress, on_outcome, n_workers)
    ids = unique_stems(videos)
    outcomes: list[ExtractOutcome] = []
    # The next video is probed and hashed while this one is encoded (an ffprobe process and a read
    # of the file: ~70 ms per video that short videos otherwise spend with the encoders idle).
    with ThreadPoolExecutor(1, thread_name_prefix="c2f-probe") as ahead:
        upcoming: Future | None = ahead.submit(_probe_and_hash, videos[0]) if videos else None
        for i, video in enumerate(videos):
            current = upcoming
            upcoming = ahead.submit(_probe_and_hash, videos[i + 1]) if i + 1 < len(videos) else None
            video_id = ids[i]
            report = (lambda done, total, i=i: progress(i, done, total)) if progress else None
            try:
                info, digest = current.result()
                subs = _subtitles_for(video, subs_path, single=len(videos) == 1)
                feats = extract_features(
                    video, settings, video_id, subs, device, report, info=info, content_hash=digest
                )
                outcome = ExtractOutcome(
                    video, save_features(feats, out_dir / f"{video_id}.safetensors"), None
                )
            except C2FError as exc:
                outcome = ExtractOutcome(video, None, str(exc))
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
    return outcomes


def unique_stems(videos: list[Path]) -> list[str]:
    """Each video's file stem; a stem seen before gets `-2`, `-3`, ... (same names in two folders)."""
    used: set[str] = set()
    ids = []
    for video in videos:
        video_id, n = video.stem, 1
        while video_id in used:
            n += 1
            video_id = f"{video.stem}-{n}"
        used.add(video_id)
        ids.append(video_id)
    return ids


def _probe_and_hash(video: Path) -> tuple[VideoInfo, str]:
    info = probe_video(video)  # first: a missing or unreadable file gets the probe's typed error
    return info, file_sha256(video)

"""Video file -> ClipFeatures: decode in chunks, encode clips in batches, decoding overlapped with encoding.

One vector per `clip_seconds` clip (N = ceil(duration / clip_seconds), at least 1). CLIP sees
`clip_frames_per_clip` evenly spaced frames of the clip (embeddings averaged), S3D sees
`s3d_frames_per_clip`; the tail clip is padded by repeating the last frame. Each stream is
L2-normalised, then the streams are concatenated [clip | s3d].
"""

from __future__ import annotations

import hashlib
import math
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
from c2f.features.settings import FeatureSettings
from c2f.features.store import ClipFeatures, Subtitle, VideoMeta, save_features
from c2f.features.subtitles import find_sidecar_subtitles, read_subtitles
from c2f.video import VideoInfo, iter_frames, probe_video

ProgressFn = Callable[[float, float], None]  # (seconds of video done, total seconds)


def file_sha256(path: str | Path, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def _even_positions(count: int, within: int) -> np.ndarray:
    """`count` evenly spaced frame positions among `within` frames of a clip (centres of equal parts)."""
    return np.floor((np.arange(count) + 0.5) * within / count).astype(np.int64)


def _clip_groups(
    path: str, settings: FeatureSettings, info, n_clips: int, group: int, first_group: int
) -> Iterator[np.ndarray]:
    """Yield uint8 (g, per_clip, H, W, 3) groups of whole clips, padding the tail with the last frame.

    The first group is small (the encoders wait for it: nothing to overlap with yet), then `group`.
    """
    per_clip = settings.frames_per_clip
    size = min(first_group, group)
    pending: list[np.ndarray] = []
    have = 0
    emitted = 0
    last = None
    # chunks as small as the first group, so that group arrives as soon as it is decoded
    chunk = per_clip * min(first_group, group)
    frames_iter = iter_frames(
        path, fps=settings.decode_fps, short_side=settings.decode_short_side, chunk_frames=chunk, info=info
    )
    for part in frames_iter:
        pending.append(part.frames)
        have += len(part.frames)
        last = part.frames[-1]
        while have >= per_clip * size and emitted + size <= n_clips:
            frames = np.concatenate(pending)
            take = per_clip * size
            yield frames[:take].reshape(size, per_clip, *frames.shape[1:])
            pending, have, emitted = [frames[take:]], have - take, emitted + size
            size = group
    if emitted < n_clips and last is not None:
        frames = np.concatenate(pending) if pending else np.zeros((0, *last.shape), np.uint8)
        need = (n_clips - emitted) * per_clip
        if len(frames) < need:
            frames = np.concatenate([frames, np.repeat(last[None], need - len(frames), axis=0)])
        yield frames[:need].reshape(n_clips - emitted, per_clip, *frames.shape[1:])


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

    cs = settings.clip_seconds
    n_clips = max(1, math.ceil(info.duration / cs - 1e-6))
    clip_enc = create_clip_encoder(settings, device)
    s3d_enc = create_s3d_encoder(settings, device) if settings.uses_s3d else None
    per_clip = settings.frames_per_clip
    clip_pos = _even_positions(settings.clip_frames_per_clip, per_clip)
    s3d_pos = _even_positions(settings.s3d_frames_per_clip, per_clip) if s3d_enc else None
    # Groups of clips per encoder call: large enough to batch well and to hand over rarely between
    # the decoding thread and the encoders (measured best: 16 with S3D, 32 without), a small first
    # group so the encoders start early. Memory: ~3 groups of decoded frames at a time.
    group = clips_per_batch or (16 if s3d_enc else 32)
    first_group = max(1, group // 4)

    clip_vecs, s3d_vecs = [], []
    done = 0
    for clips in _prefetch(_clip_groups(str(path), settings, info, n_clips, group, first_group)):
        g = len(clips)  # clips: (g, per_clip, H, W, 3)
        img = clip_enc.encode_images(clips[:, clip_pos].reshape(-1, *clips.shape[2:]))  # (g*c, d)
        img = F.normalize(img.view(g, len(clip_pos), -1).mean(1), dim=-1)  # (g, d)
        clip_vecs.append(img)
        if s3d_enc is not None:
            s3d_vecs.append(F.normalize(s3d_enc.encode_clips(clips[:, s3d_pos]), dim=-1))  # (g, 1024)
        done += g
        if progress:
            progress(min(done * cs, info.duration), info.duration)

    streams = [("clip", clip_enc.image_dim)]
    parts = [torch.cat(clip_vecs)]
    if s3d_enc is not None:
        streams.append(("s3d", s3d_enc.dim))
        parts.append(torch.cat(s3d_vecs))
    features = torch.cat(parts, dim=1).numpy()
    starts = np.arange(n_clips) * cs
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
        streams=streams,
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
) -> list[ExtractOutcome]:
    """Extract every video into `out_dir/<stem>.safetensors`; a bad video is recorded and skipped.

    `progress(video_index, done_seconds, total_seconds)` reports within-video progress. Two videos
    with the same stem (from different folders) get `<stem>-2`, `<stem>-3`, ... instead of
    overwriting each other.
    """
    out_dir = Path(out_dir)
    subs_path = Path(subtitles) if subtitles is not None else None
    videos = [Path(p) for p in paths]
    used: set[str] = set()
    outcomes: list[ExtractOutcome] = []
    # The next video is probed and hashed while this one is encoded (an ffprobe process and a read
    # of the file: ~70 ms per video that short videos otherwise spend with the encoders idle).
    with ThreadPoolExecutor(1, thread_name_prefix="c2f-probe") as ahead:
        upcoming: Future | None = ahead.submit(_probe_and_hash, videos[0]) if videos else None
        for i, video in enumerate(videos):
            current = upcoming
            upcoming = ahead.submit(_probe_and_hash, videos[i + 1]) if i + 1 < len(videos) else None
            video_id, n = video.stem, 1
            while video_id in used:
                n += 1
                video_id = f"{video.stem}-{n}"
            used.add(video_id)
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


def _probe_and_hash(video: Path) -> tuple[VideoInfo, str]:
    info = probe_video(video)  # first: a missing or unreadable file gets the probe's typed error
    return info, file_sha256(video)

"""Whole clips out of a video file: the clip grid and decoded groups of clips (numpy only, no
torch: decoding worker processes import this and nothing heavier)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from c2f.features.settings import FeatureSettings
from c2f.video import iter_frames
from c2f.video.decode import output_size


def clip_count(duration: float, settings: FeatureSettings) -> int:
    """N = ceil(duration / clip_seconds), at least 1."""
    return max(1, math.ceil(duration / settings.clip_seconds - 1e-6))


def group_sizes(settings: FeatureSettings, clips_per_batch: int | None = None) -> tuple[int, int]:
    """(clips per encoder call, clips in the first call). Large enough to batch well and to hand
    over rarely between the decoder and the encoders (measured best: 16 with S3D, 32 without); a
    small first group so the encoders start early. Memory: ~3 groups of decoded frames at a time."""
    group = clips_per_batch or (16 if settings.uses_s3d else 32)
    return group, max(1, group // 4)


def file_sha256(path: str | Path, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def even_positions(count: int, within: int) -> np.ndarray:
    """`count` evenly spaced frame positions among `within` frames of a clip (centres of equal parts)."""
    return np.floor((np.arange(count) + 0.5) * within / count).astype(np.int64)


def clip_groups(
    path: str,
    settings: FeatureSettings,
    info,
    n_clips: int,
    group: int,
    first_group: int,
    allocate: Callable[[tuple[int, ...]], np.ndarray] | None = None,
    threads: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield uint8 (g, per_clip, H, W, 3) groups of whole clips, padding the tail with the last frame.

    The first group is small (the encoders wait for it: nothing to overlap with yet), then `group`.
    Each group is written once into `allocate(shape)` (a reused shared-memory block in a decoding
    worker; a new array by default): by decord itself where a chunk fits in the group, else copied
    from the decoder's chunk.
    A group may be reused by `allocate` once the consumer asks for the next one. `threads`:
    decoder threads (None: c2f.video.decode.decode_threads()).
    """
    allocate = allocate or (lambda shape: np.empty(shape, np.uint8))
    per_clip = settings.frames_per_clip
    width, height = output_size(info, settings.decode_short_side)
    size = min(first_group, group)
    emitted = 0  # clips yielded
    out: np.ndarray | None = None  # (frames of the group being filled, H, W, 3)
    filled = 0
    last = None

    def start_group(frame_shape: tuple[int, ...]) -> np.ndarray:
        g = min(size, n_clips - emitted)
        return allocate((g * per_clip, *frame_shape))

    def destination(n: int) -> np.ndarray | None:
        """The decoder writes the next n frames straight into the group when they fit in it."""
        nonlocal out, filled
        if emitted >= n_clips:
            return None
        if out is None:
            out, filled = start_group((height, width, 3)), 0
        return out[filled : filled + n] if filled + n <= len(out) else None

    # chunks as small as the first group, so that group arrives as soon as it is decoded
    chunk = per_clip * size
    frames_iter = iter_frames(
        path,
        fps=settings.decode_fps,
        short_side=settings.decode_short_side,
        chunk_frames=chunk,
        info=info,
        threads=threads,
        destination=destination,
    )
    for part in frames_iter:
        frames, used = part.frames, 0
        last = frames[-1].copy()  # frames may lie in a block the consumer reuses
        while used < len(frames) and emitted < n_clips:
            if out is None:
                out, filled = start_group(frames.shape[1:]), 0
            take = min(len(frames) - used, len(out) - filled)
            target = out[filled : filled + take]
            if not (used == 0 and target.ctypes.data == frames.ctypes.data):  # else written in place
                target[...] = frames[used : used + take]
            filled, used = filled + take, used + take
            if filled == len(out):
                g = len(out) // per_clip
                yield out.reshape(g, per_clip, *out.shape[1:])
                out, emitted, size = None, emitted + g, group
    while emitted < n_clips and last is not None:  # frames stopped short: repeat the last one
        if out is None:
            out, filled = start_group(last.shape), 0
        out[filled:] = last
        g = len(out) // per_clip
        yield out.reshape(g, per_clip, *out.shape[1:])
        out, emitted, size = None, emitted + g, group

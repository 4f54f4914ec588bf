"""Decode sampled frames at a target rate and a reduced size, in bounded-memory chunks.

Sampling rule (the one every caller relies on): sample k is taken at t_k = (k + 0.5) / fps for
k = 0 .. ceil(duration * fps) - 1 and shows the last source frame with pts <= t_k (the frame on
screen at t_k); samples past the last frame repeat it. decord first (it resizes inside the
decoder), an ffmpeg pipe (c2f/video/pipe.py) when decord fails or stalls.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import logging
import math
import os
import queue
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from c2f.environment import env_int
from c2f.errors import CorruptVideoError, EmptyVideoError
from c2f.video.pipe import FfmpegPipe, frame_limit
from c2f.video.probe import VideoInfo, probe_video
from c2f.video.tools import ffmpeg_exe

log = logging.getLogger(__name__)

Backend = Literal["auto", "decord", "ffmpeg"]
Destination = Callable[[int], "np.ndarray | None"]  # frames of the next chunk -> where to write them


@dataclass
class FrameChunk:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB, upright
    times: np.ndarray  # (T,) float64 sample times t_k
    pts: np.ndarray  # (T,) float64 pts of the source frame shown at t_k, seconds from the stream start


class _DecoderFailed(Exception):
    """Internal: this backend cannot go on; the caller may fall back to the other."""


def sample_times(duration: float, fps: float) -> np.ndarray:
    n = max(1, math.ceil(duration * fps - 1e-9))
    return (np.arange(n, dtype=np.float64) + 0.5) / fps


def output_size(info: VideoInfo, short_side: int) -> tuple[int, int]:
    """Display (width, height) with the short side == short_side, aspect kept, both even."""
    w, h = info.width, info.height
    scale = short_side / min(w, h)
    ow, oh = max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2)
    return ow, oh


def frame_indices(frame_pts: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the last frame with pts <= t (the first frame for t before it)."""
    idx = np.searchsorted(frame_pts, times + 1e-6, side="right") - 1
    return np.clip(idx, 0, len(frame_pts) - 1)


def check_coverage(path: str, info: VideoInfo, frame_pts: np.ndarray, detail: str = "") -> None:
    """A file whose frames stop well before its announced duration is truncated, not short."""
    covered = float(frame_pts[-1]) + 1.0 / max(info.fps, 1.0)
    if covered < 0.8 * info.duration - 0.5:
        raise CorruptVideoError(
            path,
            f"truncated or damaged: frames stop at {covered:.1f} s of the announced {info.duration:.1f} s"
            + (f" ({detail})" if detail else ""),
        )


def iter_frames(
    path: str | os.PathLike,
    fps: float,
    short_side: int,
    chunk_frames: int = 64,
    info: VideoInfo | None = None,
    backend: Backend = "auto",
    timeout_s: float = 60.0,
    threads: int | None = None,
    destination: Destination | None = None,
) -> Iterator[FrameChunk]:
    """Yield chunks of at most `chunk_frames` sampled frames, in time order. `threads`: decord's
    decoder threads (None: `decode_threads()`). `destination(n)`: where the next chunk of n
    frames may be written, a C-contiguous uint8 (n, H, W, 3) array, or None; decord then writes
    the frames straight there (the chunk's `frames` is that array), saving a new array and a copy."""
    info = info or probe_video(path)
    times = sample_times(info.duration, fps)
    done = 0
    if backend in ("auto", "decord"):
        try:
            chunks = _iter_decord(str(path), info, times, short_side, chunk_frames, timeout_s, threads, destination)
            for chunk in chunks:
                done += len(chunk.times)
                yield chunk
            return
        except _DecoderFailed as exc:
            if backend == "decord":
                raise CorruptVideoError(str(path), f"decord could not decode it ({exc})") from None
            log.info("decord failed on %s (%s); falling back to ffmpeg", path, exc)
    yield from _iter_ffmpeg(str(path), info, times, short_side, chunk_frames, start=done)


# --- decord ----------------------------------------------------------------------------------------
_pool = cf.ThreadPoolExecutor(max_workers=2, thread_name_prefix="c2f-decord")


def pinned_decode_threads() -> int | None:
    """C2F_DECODE_THREADS (a whole number >= 1), None when unset."""
    return env_int("C2F_DECODE_THREADS", None, minimum=1)


def decode_threads() -> int:
    """Decoder threads: C2F_DECODE_THREADS, else up to 4 (frame threading; decoding is the
    bottleneck once the encoders run in bfloat16 or on a GPU)."""
    return pinned_decode_threads() or max(1, min(4, os.cpu_count() or 1))


def _call_with_timeout(fn, timeout_s: float):
    fut = _pool.submit(fn)
    try:
        return fut.result(timeout=timeout_s)
    except cf.TimeoutError:
        raise _DecoderFailed(f"timed out after {timeout_s:.0f} s") from None
    except Exception as exc:  # decord raises its own DECORDError and RuntimeErrors
        raise _DecoderFailed(f"{type(exc).__name__}: {exc}") from None


def _iter_decord(
    path, info, times, short_side, chunk_frames, timeout_s, threads=None, destination=None
) -> Iterator[FrameChunk]:
    import decord

    if info.rotation:
        # Whether decord honours the display matrix depends on the ffmpeg it was built with: let
        # ffmpeg, which rotates exactly as players do, handle rotated phone videos.
        raise _DecoderFailed(f"rotated video ({info.rotation} degrees)")
    ow, oh = output_size(info, short_side)
    threads = threads or decode_threads()  # out here: a bad setting is the user's error, not decord's failure
    vr = _call_with_timeout(
        lambda: decord.VideoReader(path, ctx=decord.cpu(0), width=ow, height=oh, num_threads=threads),
        timeout_s,
    )
    n = len(vr)
    if n == 0:
        raise _DecoderFailed("no frames")
    stamps = _call_with_timeout(lambda: vr.get_frame_timestamp(np.arange(n)), timeout_s)
    frame_pts = np.asarray(stamps, dtype=np.float64)[:, 0]
    if not np.all(np.isfinite(frame_pts)) or np.any(np.diff(frame_pts) < 0):
        raise _DecoderFailed("frame timestamps are not monotonic")
    if frame_pts[0] < -1e-3:
        # An edit list hides these frames (a file cut without re-encoding): decord lists them in its
        # timestamps but returns the shown frames by index, so index i no longer has the pts of frame i.
        raise _DecoderFailed("frames before the stream start (edit list)")
    try:
        check_coverage(path, info, frame_pts)
    except CorruptVideoError as exc:  # decord may lose frames ffmpeg can still read: let it judge
        raise _DecoderFailed(exc.reason) from None
    idx = frame_indices(frame_pts, times)
    for s in range(0, len(times), chunk_frames):
        sel = idx[s : s + chunk_frames]
        uniq, inverse = np.unique(sel, return_inverse=True)
        # sel is sorted: distinct indices (the usual case, sampling below the source rate) are the
        # frames as decord returns them, written where the caller wants them when it says where
        into = destination(len(sel)) if destination is not None and len(uniq) == len(sel) else None
        batch = _call_with_timeout(lambda u=uniq, into=into: _get_batch(vr, u, into), timeout_s)
        frames = batch if len(uniq) == len(sel) else batch[inverse]
        yield FrameChunk(frames=frames, times=times[s : s + chunk_frames], pts=frame_pts[sel])


def _get_batch(reader, indices: np.ndarray, into: np.ndarray | None) -> np.ndarray:
    """decord's frames at `indices`, copied once from decord's buffer: into `into` when given
    (through decord's own copy call, the one `asnumpy` makes into a new array), else a new array."""
    batch = reader.get_batch(indices.tolist())
    copy = _decord_copy_call()
    if into is None or copy is None or tuple(batch.shape) != into.shape or not into.flags.c_contiguous:
        return batch.asnumpy()
    copy(batch, into)
    return into


@functools.cache
def _decord_copy_call():
    """decord's copy of an array's bytes to an address (decord 0.6: what asnumpy calls), or None."""
    try:
        import ctypes

        from decord._ffi.base import _LIB, check_call
    except ImportError:
        return None

    def copy(batch, into: np.ndarray) -> None:
        address = into.ctypes.data_as(ctypes.c_void_p)
        check_call(_LIB.DECORDArrayCopyToBytes(batch.handle, address, ctypes.c_size_t(into.nbytes)))

    return copy


# --- ffmpeg pipe -----------------------------------------------------------------------------------
# One showinfo line per frame leaving the filter graph: "n:  12 pts:  6144 pts_time:0.48 ...".
_SHOWINFO = re.compile(rb"\bn:\s*\d+\s+pts:\s*\S+\s+pts_time:(\S+)")
_ERROR_LINE = re.compile(rb"(?i)error|invalid|corrupt|truncat|no such|denied")


class _ShowinfoLog:
    """ffmpeg's log lines as they come (FfmpegPipe's parser): the pts of every output frame, in
    order, then None when the log ends; error lines stay in the pipe's tail for messages."""

    def __init__(self) -> None:
        self.frame_pts: queue.Queue[float | None] = queue.Queue()

    def __call__(self, line: bytes) -> bool:
        if not line:
            self.frame_pts.put(None)
            return False
        found = _SHOWINFO.search(line)
        if found:
            try:
                self.frame_pts.put(float(found.group(1)))
            except ValueError:  # "NOPTS"
                self.frame_pts.put(math.nan)
            return False
        return bool(_ERROR_LINE.search(line))


def _ffmpeg_frames(pipe: FfmpegPipe, log: _ShowinfoLog, info: VideoInfo, ow: int, oh: int):
    """Decoded frames in presentation order with their pts (seconds from the video stream start)."""
    frame_bytes = ow * oh * 3
    previous = -math.inf
    while True:
        raw = pipe.read(frame_bytes)
        if len(raw) < frame_bytes:
            return
        try:
            # showinfo logs a frame before it is written to stdout: only thread scheduling lags.
            pts = log.frame_pts.get(timeout=30.0)
        except queue.Empty:
            raise CorruptVideoError(info.path, "ffmpeg decoded a frame but reported no timestamp") from None
        if pts is None:
            return
        pts -= info.start_time  # -copyts keeps the stream's own timestamps
        if not math.isfinite(pts) or pts < previous:  # missing or out-of-order stamp: just after the last
            pts = previous + 1.0 / max(info.fps, 1.0) if math.isfinite(previous) else 0.0
        previous = pts
        yield np.frombuffer(raw, dtype=np.uint8).reshape(oh, ow, 3), pts


def _iter_ffmpeg(path, info, times, short_side, chunk_frames, start: int = 0) -> Iterator[FrameChunk]:
    """Stream every decoded frame through a pipe, keeping only the one on screen at the next t_k:
    pts come from ffmpeg itself (showinfo), so dropped, damaged or edit-list frames cannot shift them.
    ffmpeg is ended when it makes no progress for the pipe's stall timeout (CorruptVideoError)."""
    ow, oh = output_size(info, short_side)
    # ffmpeg auto-rotates before our scale filter, so the output is upright at display size.
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostats",
        "-nostdin",
        "-copyts",
        "-i",
        path,
        "-map",
        "0:v:0",
        "-fps_mode",
        "passthrough",
        "-vf",
        f"scale={ow}:{oh}:flags=area,showinfo",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]
    log = _ShowinfoLog()
    # every decoded frame comes through: more than the probed duration holds is refused (a flood of
    # frames with one timestamp would otherwise be read to its end)
    limit = frame_limit(info.duration, max(info.fps, 1.0), ow * oh * 3)
    with FfmpegPipe(cmd, path, on_line=log, limit=limit) as pipe:
        frames = _ffmpeg_frames(pipe, log, info, ow, oh)
        shown = next(frames, None)  # (frame (H, W, 3), pts) on screen at the current sample
        if shown is None:
            reason = pipe.last_line()
            raise EmptyVideoError(path, "no decodable video frame" + (f" ({reason})" if reason else ""))
        upcoming = next(frames, None)
        if upcoming is None:
            check_coverage(path, info, np.array([shown[1]]), pipe.last_line())
        buf: list[np.ndarray] = []
        buf_pts: list[float] = []
        for k in range(start, len(times)):
            while upcoming is not None and upcoming[1] <= times[k] + 1e-6:
                shown, upcoming = upcoming, next(frames, None)
                if upcoming is None:
                    check_coverage(path, info, np.array([shown[1]]), pipe.last_line())
            buf.append(shown[0])
            buf_pts.append(shown[1])
            if len(buf) == chunk_frames or k == len(times) - 1:
                yield FrameChunk(
                    frames=np.stack(buf), times=times[k + 1 - len(buf) : k + 1], pts=np.asarray(buf_pts)
                )
                buf, buf_pts = [], []

"""Decode sampled frames at a target rate and a reduced size, in bounded-memory chunks.

Sampling rule (the one every caller relies on): sample k is taken at t_k = (k + 0.5) / fps for
k = 0 .. ceil(duration * fps) - 1 and shows the last source frame with pts <= t_k (the frame on
screen at t_k); samples past the last frame repeat it. decord first (it resizes inside the
decoder), an ffmpeg pipe when decord fails or stalls.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from c2f.errors import CorruptVideoError, EmptyVideoError
from c2f.video.probe import VideoInfo, probe_video
from c2f.video.tools import ffmpeg_exe, ffprobe_exe

log = logging.getLogger(__name__)

Backend = Literal["auto", "decord", "ffmpeg"]


@dataclass
class FrameChunk:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB, upright
    times: np.ndarray  # (T,) float64 sample times t_k
    pts: np.ndarray  # (T,) float64 presentation time of the source frame shown at t_k


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


def check_coverage(path: str, info: VideoInfo, frame_pts: np.ndarray) -> None:
    """A file whose frames stop well before its announced duration is truncated, not short."""
    covered = float(frame_pts[-1]) + 1.0 / max(info.fps, 1.0)
    if covered < 0.8 * info.duration - 0.5:
        raise CorruptVideoError(
            path,
            f"truncated or damaged: frames stop at {covered:.1f} s of the announced {info.duration:.1f} s",
        )


def iter_frames(
    path: str | os.PathLike,
    fps: float,
    short_side: int,
    chunk_frames: int = 64,
    info: VideoInfo | None = None,
    backend: Backend = "auto",
    timeout_s: float = 60.0,
) -> Iterator[FrameChunk]:
    """Yield chunks of at most `chunk_frames` sampled frames, in time order."""
    info = info or probe_video(path)
    times = sample_times(info.duration, fps)
    done = 0
    if backend in ("auto", "decord"):
        try:
            for chunk in _iter_decord(str(path), info, times, short_side, chunk_frames, timeout_s):
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


def _call_with_timeout(fn, timeout_s: float):
    fut = _pool.submit(fn)
    try:
        return fut.result(timeout=timeout_s)
    except cf.TimeoutError:
        raise _DecoderFailed(f"timed out after {timeout_s:.0f} s") from None
    except Exception as exc:  # decord raises its own DECORDError and RuntimeErrors
        raise _DecoderFailed(f"{type(exc).__name__}: {exc}") from None


def _iter_decord(path, info, times, short_side, chunk_frames, timeout_s) -> Iterator[FrameChunk]:
    import decord

    if info.rotation:
        # decord ignores the display matrix (and resizes the stored frame wrongly for it): let
        # ffmpeg, which rotates exactly as players do, handle rotated phone videos.
        raise _DecoderFailed(f"rotated video ({info.rotation} degrees)")
    ow, oh = output_size(info, short_side)
    vr = _call_with_timeout(
        lambda: decord.VideoReader(path, ctx=decord.cpu(0), width=ow, height=oh, num_threads=1), timeout_s
    )
    n = len(vr)
    if n == 0:
        raise _DecoderFailed("no frames")
    stamps = _call_with_timeout(lambda: vr.get_frame_timestamp(np.arange(n)), timeout_s)
    frame_pts = np.asarray(stamps, dtype=np.float64)[:, 0]
    if not np.all(np.isfinite(frame_pts)) or np.any(np.diff(frame_pts) < 0):
        raise _DecoderFailed("frame timestamps are not monotonic")
    check_coverage(path, info, frame_pts)
    idx = frame_indices(frame_pts, times)
    for s in range(0, len(times), chunk_frames):
        sel = idx[s : s + chunk_frames]
        uniq, inverse = np.unique(sel, return_inverse=True)
        batch = _call_with_timeout(lambda u=uniq: vr.get_batch(u.tolist()).asnumpy(), timeout_s)
        yield FrameChunk(frames=batch[inverse], times=times[s : s + chunk_frames], pts=frame_pts[sel])


# --- ffmpeg pipe -----------------------------------------------------------------------------------
def _ffmpeg_frame_pts(path: str) -> np.ndarray:
    """Presentation times of the video frames, from the packets (demux only, no decoding)."""
    cmd = [
        ffprobe_exe(),
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts_time",
        "-of",
        "csv=p=0",
        path,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    vals = [float(x.split(",")[0]) for x in out.split() if x and x.split(",")[0] not in ("", "N/A")]
    return np.sort(np.asarray(vals, dtype=np.float64))


def _iter_ffmpeg(path, info, times, short_side, chunk_frames, start: int = 0) -> Iterator[FrameChunk]:
    ow, oh = output_size(info, short_side)
    frame_pts = _ffmpeg_frame_pts(path)
    if len(frame_pts) == 0:
        raise EmptyVideoError(path, "no decodable video frame")
    frame_pts = frame_pts - frame_pts[0] if frame_pts[0] < 0 else frame_pts
    check_coverage(path, info, frame_pts)
    idx = frame_indices(frame_pts, times)
    # ffmpeg auto-rotates before our scale filter, so the output is upright at display size.
    cmd = [
        ffmpeg_exe(),
        "-v",
        "error",
        "-nostdin",
        "-i",
        path,
        "-map",
        "0:v:0",
        "-fps_mode",
        "passthrough",
        "-vf",
        f"scale={ow}:{oh}:flags=area",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]
    frame_bytes = ow * oh * 3
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        decoded = -1
        last: np.ndarray | None = None
        buf: list[np.ndarray] = []
        k = start
        while k < len(times):
            want = idx[k]
            while decoded < want:
                raw = proc.stdout.read(frame_bytes)
                if len(raw) < frame_bytes:
                    break
                decoded += 1
                last = np.frombuffer(raw, dtype=np.uint8).reshape(oh, ow, 3)
            if last is None:
                raise CorruptVideoError(path, "no frame could be decoded (the file is damaged)")
            if decoded < want and decoded < 0.9 * len(frame_pts) - 1:
                raise CorruptVideoError(
                    path, f"truncated or damaged: only {decoded + 1} of {len(frame_pts)} frames decode"
                )
            buf.append(last)
            k += 1
            if len(buf) == chunk_frames or k == len(times):
                s = k - len(buf)
                shown = np.minimum(idx[s:k], decoded)
                yield FrameChunk(frames=np.stack(buf), times=times[s:k], pts=frame_pts[shown])
                buf = []
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()

"""Cut the found moments out of their videos with ffmpeg.

- exact (re-encoded, H.264/AAC in .mp4): exactly the moment's frames (c2f.export.timecode: the
  frames whose display begins inside it), audio alongside (half a frame more on each side).
  Decoding is asked to start half a frame before the first frame, so it is the first kept whatever
  the rounding of timestamps. A container with an index (mp4/mov, Matroska/WebM, AVI, ASF) is
  entered there directly; one without (MPEG-TS, MPEG-PS, ...) lands near a time but not on a
  keyframe, so decoding starts PREROLL_S earlier and frames are dropped up to the moment. A clip
  holding fewer frames than the moment (a keyframe later than the pre-roll) is cut again, decoding
  from the start of the video.
- fast (stream copy, the source's container): no re-encoding and no loss, but a cut can only start
  on a keyframe: the clip starts at the keyframe at or before the moment (up to one keyframe
  interval earlier, that much longer) and ends at the moment's end. Only a container with an index
  finds that keyframe: other files are cut exactly (re-encoded) instead.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from c2f.export.timecode import Rate, moment_frames
from c2f.shared_files import atomic_path
from c2f.video.probe import VideoInfo, probe_video
from c2f.video.tools import ffmpeg_to_file

EXACT_ARGS = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac"]
INDEXED = {"mov", "mp4", "matroska", "webm", "avi", "asf"}  # ffprobe format names of containers with an index
PREROLL_S = 30.0  # decoding starts this much before the moment in a container without an index


def has_index(info: VideoInfo) -> bool:
    """Whether seeking in the file lands on a keyframe at or before the target (its container has an index)."""
    return bool(INDEXED & set(info.container.split(",")))


def clip_extension(info: VideoInfo, exact: bool) -> str:
    """The clip's file extension: .mp4 when re-encoded, else the source's own."""
    return Path(info.path).suffix.lower() if not exact and has_index(info) else ".mp4"


def safe_stem(name: str, limit: int = 40) -> str:
    """A file-name stem of ASCII letters, digits, '.', '_' and '-' (never empty)."""
    flat = unicodedata.normalize("NFKD", Path(name).stem).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9._-]+", "_", flat).strip("._")[:limit] or "video"


def cut_timeout(seconds: float) -> float:
    """ffmpeg's time limit for one clip: generous for a slow re-encode, never unbounded."""
    return max(120.0, 8.0 * seconds)


def cut_clip(info: VideoInfo, start: float, end: float, out: Path, exact: bool) -> Path:
    """Write the moment [start, end) seconds of the video `info` describes to `out` (atomically,
    extension from `clip_extension`); C2FError with ffmpeg's last words when it fails."""
    source = Path(info.path)
    rate = Rate.of(info.fps)
    first, stop = moment_frames(start, end, rate)
    fps = float(rate.fps)
    count = stop - first
    what = f"a clip of {source.name} {start:.2f}-{end:.2f} s"
    lead = max(0.0, info.start_time - info.format_start_time)  # video starts after the container (audio first)
    timeout = cut_timeout(count / fps)
    with atomic_path(out) as tmp:
        if not exact and has_index(info):
            args = ["-ss", f"{lead + first / fps:.6f}", "-i", str(source), "-map", "0:v:0", "-map", "0:a:0?"]
            args += ["-t", f"{count / fps:.6f}", "-c", "copy", "-avoid_negative_ts", "make_zero"]
            ffmpeg_to_file(args, tmp, what, timeout)
            return out
        target = lead + max(0.0, (first - 0.5) / fps)  # on ffmpeg's clock (from the container's start)
        available = max(1, min(stop, info.num_frames) - first)
        entries = ([target] if has_index(info) else []) + [max(0.0, target - PREROLL_S), 0.0]
        for entry in dict.fromkeys(entries):  # in order, each once
            args = ["-ss", f"{entry:.6f}", "-i", str(source), "-ss", f"{target - entry:.6f}"]
            args += ["-map", "0:v:0", "-map", "0:a:0?", "-frames:v", str(count)]
            # -t bounds the audio: half a frame more on each side than the frames (ffmpeg drops a
            # frame whose end passes -t, so -t alone cannot bound the video exactly; -frames:v does)
            args += ["-t", f"{(count + 1) / fps:.6f}", *EXACT_ARGS, "-movflags", "+faststart"]
            ffmpeg_to_file(args, tmp, what, timeout + (target - entry) * 4)
            if probe_video(tmp).num_frames >= available:
                break
    return out

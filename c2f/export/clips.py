"""Cut the found moments out of their videos with ffmpeg.

- exact (re-encoded, H.264/AAC in .mp4): exactly the moment's frames (c2f.export.timecode:
  the frames whose display begins inside it), audio alongside (half a frame more on each side):
  decoding starts half a frame before the first frame, so it is the first kept whatever the
  rounding of timestamps.
- fast (stream copy, the source's container): no re-encoding and no loss, but a cut can only start
  on a keyframe: the clip starts at the keyframe at or before the moment (up to one keyframe
  interval earlier, that much longer) and ends at the moment's end.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from pathlib import Path

from c2f.errors import C2FError
from c2f.export.timecode import Rate, moment_frames
from c2f.shared_files import atomic_path
from c2f.video.tools import ffmpeg_exe

EXACT_ARGS = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac"]


def safe_stem(name: str, limit: int = 40) -> str:
    """A file-name stem of ASCII letters, digits, '.', '_' and '-' (never empty)."""
    flat = unicodedata.normalize("NFKD", Path(name).stem).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9._-]+", "_", flat).strip("._")[:limit] or "video"


def cut_timeout(seconds: float) -> float:
    """ffmpeg's time limit for one clip: generous for a slow re-encode, never unbounded."""
    return max(120.0, 8.0 * seconds)


def cut_clip(source: Path, start: float, end: float, rate: Rate, out: Path, exact: bool) -> Path:
    """Write the moment [start, end) seconds of `source` to `out` (atomically); C2FError with
    ffmpeg's last words when it fails."""
    first, stop = moment_frames(start, end, rate)
    fps = float(rate.fps)
    count = stop - first
    if exact:
        seek = max(0.0, (first - 0.5) / fps)
        args = ["-ss", f"{seek:.6f}", "-i", str(source), "-map", "0:v:0", "-map", "0:a:0?"]
        # -t bounds the audio: half a frame more on each side than the frames (ffmpeg drops a
        # frame whose end passes -t, so -t alone cannot bound the video exactly; -frames:v does)
        args += ["-frames:v", str(count), "-t", f"{(count + 1) / fps:.6f}", *EXACT_ARGS, "-movflags", "+faststart"]
    else:
        args = ["-ss", f"{first / fps:.6f}", "-i", str(source), "-map", "0:v:0", "-map", "0:a:0?"]
        args += ["-t", f"{count / fps:.6f}", "-c", "copy", "-avoid_negative_ts", "make_zero"]
    with atomic_path(out) as tmp:
        try:
            proc = subprocess.run(
                [ffmpeg_exe(), "-v", "error", "-y", *args, str(tmp)],
                capture_output=True,
                timeout=cut_timeout(count / fps),
            )
        except subprocess.TimeoutExpired:
            raise C2FError(f"cutting {source.name} {start:.2f}-{end:.2f} s took too long") from None
        if proc.returncode != 0 or tmp.stat().st_size == 0:
            why = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise C2FError(f"could not cut {source.name} {start:.2f}-{end:.2f} s: {why[0]}")
    return out

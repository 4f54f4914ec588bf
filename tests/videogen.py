"""Test videos made on the fly with ffmpeg: good ones in several containers/codecs, and bad ones.

`make_video` renders coloured segments (so tests can plant visual events at known times) or
ffmpeg's moving test pattern; every knob a real user's file may differ in is a parameter.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

from c2f.video.tools import ffmpeg_exe, ffprobe_exe

# container extension -> (video codec, extra args)
CODECS: dict[str, tuple[str, list[str]]] = {
    "mp4": ("libx264", ["-pix_fmt", "yuv420p", "-preset", "ultrafast"]),
    "mkv": ("libx264", ["-pix_fmt", "yuv420p", "-preset", "ultrafast"]),
    "mov": ("libx264", ["-pix_fmt", "yuv420p", "-preset", "ultrafast"]),
    "webm": (
        "libvpx-vp9",
        ["-pix_fmt", "yuv420p", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k"],
    ),
    "avi": ("mpeg4", ["-q:v", "5"]),  # MPEG-4 part 2
}


def _run(args: list[str]) -> None:
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], capture_output=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.decode(errors='replace')[-2000:]}")


def make_video(
    path: str | Path,
    seconds: float = 3.0,
    size: tuple[int, int] = (160, 120),
    fps: float = 25,
    segments: list[tuple[str, float]] | None = None,
    audio: bool = False,
    rotate: int | None = None,
    vcodec: str | None = None,
    display_aspect: str | None = None,
) -> Path:
    """Render a video. `segments`: [(ffmpeg colour, seconds)] shown in order (overrides `seconds`);
    otherwise ffmpeg's moving `testsrc2` pattern. `rotate`: degrees a player turns the stored frames
    clockwise to show them (display-matrix metadata: 90/180/270, as a phone held upright writes).
    `display_aspect` ("16:9"): stored size kept, shown at this aspect (anamorphic pixels)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lstrip(".")
    codec, extra = CODECS[ext]
    codec = vcodec or codec
    w, h = size
    args: list[str] = []
    if segments:
        for colour, dur in segments:
            args += ["-f", "lavfi", "-i", f"color=c={colour}:s={w}x{h}:r={fps}:d={dur}"]
        n = len(segments)
        chain = "".join(f"[{i}:v]" for i in range(n)) + f"concat=n={n}:v=1:a=0[v]"
        total = sum(d for _, d in segments)
        filt = ["-filter_complex", chain, "-map", "[v]"]
    else:
        args += ["-f", "lavfi", "-i", f"testsrc2=s={w}x{h}:r={fps}:d={seconds}"]
        total = seconds
        filt = ["-map", "0:v"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={total}"]
        filt += [
            "-map",
            f"{len(segments) if segments else 1}:a",
            "-c:a",
            "aac" if ext != "webm" else "libopus",
        ]
    aspect = ["-aspect", display_aspect] if display_aspect else []
    out = [*args, *filt, "-c:v", codec, *extra, *aspect, "-t", str(total), str(path)]
    _run(out)
    if rotate is not None:
        set_rotation(path, rotate)
    return path


def _clockwise_rotation(path: Path) -> int | None:
    """The clockwise turn a player applies (display matrix rotation is counter-clockwise)."""
    cmd = [ffprobe_exe(), "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json", str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    for stream in json.loads(out or "{}").get("streams", []):
        for side in stream.get("side_data_list", []) or []:
            if "rotation" in side:
                return round(-float(side["rotation"])) % 360
    return None


def set_rotation(path: str | Path, clockwise: int) -> Path:
    """Tag `path` (stream copy) so players turn it `clockwise` degrees. ffmpeg versions disagree on
    the sign of the legacy `rotate` tag and newer ones only take -display_rotation: try each, keep
    the one the file ends up with."""
    path = Path(path)
    tagged = path.with_name(path.stem + ".rot" + path.suffix)
    attempts = [
        ["-i", str(path), "-c", "copy", "-metadata:s:v:0", f"rotate={clockwise}"],
        ["-i", str(path), "-c", "copy", "-metadata:s:v:0", f"rotate={(360 - clockwise) % 360}"],
        ["-display_rotation:v:0", str(-clockwise), "-i", str(path), "-c", "copy"],
    ]
    for args in attempts:
        try:
            _run([*args, str(tagged)])
        except RuntimeError:  # option unknown to this ffmpeg
            continue
        if _clockwise_rotation(tagged) == clockwise % 360:
            tagged.replace(path)
            return path
    raise RuntimeError(f"this ffmpeg cannot write a {clockwise} degree display rotation")


def make_split_video(
    path: str | Path,
    left: str = "red",
    right: str = "blue",
    size: tuple[int, int] = (160, 96),
    seconds: float = 1.0,
    rotate: int | None = None,
) -> Path:
    """Left half one colour, right half another: shows which way frames were turned."""
    path = Path(path)
    w, h = size
    ext = path.suffix.lstrip(".")
    codec, extra = CODECS[ext]
    src = f"color=c={left}:s={w // 2}x{h}:d={seconds},pad={w}:{h}:0:0:{right}"
    _run(["-f", "lavfi", "-i", src, "-c:v", codec, *extra, str(path)])
    if rotate is not None:
        set_rotation(path, rotate)
    return path


def make_offset_copy(src: str | Path, path: str | Path, offset: float) -> Path:
    """Same frames, timestamps starting at `offset` s (cut streams, camera MPEG-TS files)."""
    path = Path(path)
    _run(["-i", str(src), "-c", "copy", "-output_ts_offset", str(offset), str(path)])
    return path


def make_trimmed_copy(src: str | Path, path: str | Path, start: float) -> Path:
    """Cut without re-encoding: an mp4 edit list hides the frames before `start` (back to the keyframe)."""
    path = Path(path)
    _run(["-ss", str(start), "-i", str(src), "-c", "copy", str(path)])
    return path


def make_damaged_copy(src: str | Path, path: str | Path, seed: int = 0) -> Path:
    """Garbage sprayed over the middle 60% of the file: the decoder logs errors on many frames."""
    data = bytearray(Path(src).read_bytes())
    rng = random.Random(seed)
    for i in range(len(data) // 5, 4 * len(data) // 5, 997):
        data[i : i + 40] = rng.randbytes(40)
    path = Path(path)
    path.write_bytes(bytes(data))
    return path


def make_error_flood_ts(path: str | Path, seconds: float = 60.0, seed: int = 0) -> Path:
    """An MPEG-TS (H.264 in 32 slices a frame + 96 kHz AAC) with 20 bytes of garbage in the payload of
    every 188-byte packet that continues a frame, after the first tenth of the file (clean, so that
    ffprobe reads the streams). Headers, PES starts and clocks stay intact, so the timestamps hold.
    For 60 s ffmpeg logs about 1 MB of video and 0.3 MB of audio decoding errors, far more than a
    pipe holds (~64 KB), and decodes it in about a second."""
    path = Path(path)
    clean = path.with_name(path.stem + ".clean.ts")
    _run(
        [
            "-f", "lavfi", "-i", f"testsrc2=s=256x192:r=25:d={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=96000:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-x264opts", "slices=32",
            "-c:a", "aac", "-f", "mpegts", str(clean),
        ]
    )  # fmt: skip
    data = bytearray(clean.read_bytes())
    clean.unlink()
    rng = random.Random(seed)
    packets = len(data) // 188
    for packet in range(packets // 10, packets):
        at = packet * 188
        starts_pes = data[at + 1] & 0x40
        payload_only = data[at + 3] & 0x30 == 0x10  # no adaptation field (clock, stuffing)
        if not starts_pes and payload_only:
            spot = at + 4 + rng.randrange(0, 164)
            data[spot : spot + 20] = rng.randbytes(20)
    path.write_bytes(bytes(data))
    return path


def make_jumping_ts(path: str | Path) -> Path:
    """A hostile MPEG-TS that ffprobe calls 2 s long: 1 s of frames, then 100 frames each 9.9 s after
    the last (jumps under ffmpeg's 10 s discontinuity threshold, so nothing corrects them) with 30 s
    of audio, then the 2 s that ffprobe sees, padded (-muxrate) past the ~250 KB it reads from the
    end to estimate a TS's duration. ffmpeg's fps filter fills the ~990 s of jumps with copies
    (29,790 frames at 30 fps, 274 MB at 64x48), the audio decodes to 32 s. 0.6 MB, made in ~1 s."""
    path = Path(path)
    jumps, tail = path.with_name(path.stem + ".jumps.ts"), path.with_name(path.stem + ".tail.ts")
    video = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "1"]
    _run(
        [
            "-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=5", "-f", "lavfi", "-i", "sine=sample_rate=8000:duration=30",
            "-vf", "setpts='if(lt(N,25),N/25/TB,(1+(N-24)*9.9)/TB)'", "-frames:v", "125", *video, "-f", "mpegts", str(jumps),
        ]
    )  # fmt: skip
    _run(
        [
            "-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=2", "-f", "lavfi", "-i", "sine=sample_rate=8000:duration=2",
            *video, "-muxrate", "1500k", "-f", "mpegts", str(tail),
        ]
    )  # fmt: skip
    path.write_bytes(jumps.read_bytes() + tail.read_bytes())
    jumps.unlink()
    tail.unlink()
    return path


def make_repeated_timestamps_mkv(path: str | Path, copies: int = 200) -> Path:
    """A 1 s Matroska file (25 fps by its header) whose every timestamp is shared by `copies` frames:
    25 x copies frames, all of which ffmpeg passes through (-fps_mode passthrough)."""
    path = Path(path)
    _run(
        [
            "-f", "lavfi", "-i", f"testsrc2=s=32x32:r=25:d={copies}", "-vf", f"setpts='floor(N/{copies})/25/TB'",
            "-fps_mode", "passthrough", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-bf", "0",
            str(path),
        ]
    )  # fmt: skip
    return path


def make_image(path: str | Path, size: tuple[int, int] = (64, 48)) -> Path:
    """A single still picture (format from the extension: .png, .jpg)."""
    path = Path(path)
    _run(["-f", "lavfi", "-i", f"color=red:s={size[0]}x{size[1]}", "-frames:v", "1", str(path)])
    return path


def make_vfr_video(path: str | Path, seconds: float = 4.0, size: tuple[int, int] = (160, 120)) -> Path:
    """Variable frame rate: frames dropped irregularly, timestamps kept (mp4, -fps_mode vfr)."""
    path = Path(path)
    _run(
        [
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=s={size[0]}x{size[1]}:r=30:d={seconds}",
            "-vf",
            "select='not(mod(n\\,3))+between(t\\,1\\,2)',setpts=PTS",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-preset",
            "ultrafast",
            str(path),
        ]
    )
    return path


def make_audio_only(path: str | Path, seconds: float = 2.0) -> Path:
    path = Path(path)
    _run(["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", str(path)])
    return path


def make_text_file_as_video(path: str | Path) -> Path:
    path = Path(path)
    path.write_text("this is not a video, just text renamed to look like one\n" * 20)
    return path


def make_truncated(src: str | Path, path: str | Path, keep_fraction: float = 0.3) -> Path:
    data = Path(src).read_bytes()
    path = Path(path)
    path.write_bytes(data[: max(1, int(len(data) * keep_fraction))])
    return path


def make_zero_length(path: str | Path) -> Path:
    path = Path(path)
    path.write_bytes(b"")
    return path


def write_srt(path: str | Path, cues: list[tuple[float, float, str]]) -> Path:
    def ts(t: float) -> str:
        ms = round(t * 1000)
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    path = Path(path)
    blocks = [f"{i}\n{ts(s)} --> {ts(e)}\n{text}\n" for i, (s, e, text) in enumerate(cues, 1)]
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path

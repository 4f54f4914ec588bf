"""Example videos we make ourselves with ffmpeg's generators (no third-party footage), with
subtitles, example queries and TVR-format annotations for the error-analysis tab.

Rendered on first use into assets/generated/ (a few hundred kB in all), described by
assets/examples.json.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from c2f.video.tools import ffmpeg_exe

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SIZE = "480x270"


def _segments(parts: list[list], fps: int = 15) -> list[str]:
    """[[lavfi source, seconds], ...] -> ffmpeg args that render them back to back at one size."""
    args: list[str] = []
    for source, seconds in parts:
        sep = ":" if "=" in source else "="
        args += ["-t", str(seconds), "-f", "lavfi", "-i", f"{source}{sep}s={SIZE}"]
    n = len(parts)
    chain = "".join(f"[{i}:v]scale={SIZE},setsar=1,fps={fps}[v{i}];" for i in range(n))
    chain += "".join(f"[v{i}]" for i in range(n)) + f"concat=n={n}:v=1:a=0[out]"
    return [*args, "-filter_complex", chain, "-map", "[out]"]


def _srt(cues: list[list]) -> str:
    def ts(t: float) -> str:
        ms = round(t * 1000)
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    return "\n".join(f"{i}\n{ts(s)} --> {ts(e)}\n{text}\n" for i, (s, e, text) in enumerate(cues, 1))


def load_spec() -> dict:
    return json.loads((ASSETS / "examples.json").read_text())


def ensure_examples(out_dir: Path | None = None) -> list[Path]:
    """Render the example videos (and their .srt) once; returns the video paths."""
    spec = load_spec()
    out = Path(out_dir) if out_dir else ASSETS / "generated"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for video in spec["videos"]:
        path = out / video["file"]
        if not path.is_file():
            tmp = path.with_suffix(".tmp.mp4")
            cmd = [
                ffmpeg_exe(),
                "-v",
                "error",
                "-y",
                *_segments(video["sources"]),
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "30",
                "-pix_fmt",
                "yuv420p",
                str(tmp),
            ]
            subprocess.run(cmd, check=True, capture_output=True, timeout=120)
            tmp.replace(path)
        if video.get("subtitles"):
            path.with_suffix(".srt").write_text(_srt(video["subtitles"]), encoding="utf-8")
        paths.append(path)
    (out / "annotations.jsonl").write_text("".join(json.dumps(a) + "\n" for a in spec["annotations"]))
    return paths


def example_queries() -> list[str]:
    return load_spec()["queries"]


def example_annotations() -> Path:
    ensure_examples()
    return ASSETS / "generated" / "annotations.jsonl"

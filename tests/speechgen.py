"""Speech made offline for tests: Debian's espeak-ng says known sentences into a WAV, ffmpeg lays
them out at known times and muxes them with a generated video (or writes audio alone)."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from c2f.video.tools import ffmpeg_exe

SENTENCES = (
    "she hands him the keys to the car",
    "the dog runs across the kitchen",
    "they sit at the table and talk about music",
)


def espeak_or_skip() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng; `make test` does it)")
    return exe


def _ffmpeg(args: list[str]) -> None:
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.decode(errors='replace')[-2000:]}")


def speak(text: str, path: Path) -> float:
    """espeak-ng says `text` into `path` (WAV); returns its length in seconds."""
    subprocess.run([espeak_or_skip(), "-w", str(path), text], check=True, capture_output=True)
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def make_speech_audio(path: Path, sentences: tuple[str, ...] = SENTENCES, gap: float = 1.0) -> list[tuple[float, float, str]]:
    """A WAV with each sentence after `gap` seconds of silence; returns (start, end, text) of each."""
    spans, inputs, filters, t = [], [], [], 0.0
    for i, text in enumerate(sentences):
        part = path.with_name(f"{path.stem}.part{i}.wav")
        length = speak(text, part)
        inputs += ["-i", str(part)]
        delay = round((t + gap) * 1000)
        filters.append(f"[{i}:a]aresample=16000,adelay={delay}:all=1[a{i}]")
        spans.append((t + gap, t + gap + length, text))
        t += gap + length
    mix = "".join(f"[a{i}]" for i in range(len(sentences)))
    chain = ";".join(filters) + f";{mix}amix=inputs={len(sentences)}:normalize=0,apad=pad_dur={gap}[out]"
    _ffmpeg([*inputs, "-filter_complex", chain, "-map", "[out]", "-ac", "1", "-t", str(t + gap), str(path)])
    return spans


def make_speech_video(path: Path, sentences: tuple[str, ...] = SENTENCES, gap: float = 1.0) -> list[tuple[float, float, str]]:
    """An mp4 (moving test pattern + AAC speech) as long as the speech; returns the sentences' spans."""
    wav = path.with_suffix(".speech.wav")
    spans = make_speech_audio(wav, sentences, gap)
    seconds = spans[-1][1] + gap
    _ffmpeg([
        "-f", "lavfi", "-i", f"testsrc2=s=160x120:r=25:d={seconds}", "-i", str(wav),
        "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast",
        "-c:a", "aac", "-t", str(seconds), str(path),
    ])  # fmt: skip
    return spans


def make_long_audio(path: Path, seconds: float) -> Path:
    """`seconds` of a spoken sentence repeated (espeak-ng once, looped by ffmpeg), 16 kHz mono in the
    container `path` names (.wav: no encoder to wait for)."""
    part = path.with_name(path.stem + ".sentence.wav")
    speak(SENTENCES[0], part)
    _ffmpeg(["-stream_loop", "-1", "-i", str(part), "-t", str(seconds), "-ar", "16000", "-ac", "1", str(path)])
    return path

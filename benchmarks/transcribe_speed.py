"""Transcription speed: real-time factors (seconds of audio per wall second) of Whisper tiny and base.

Full-size architectures (the released configurations, vocabulary 51865) with random weights: the
time of a forward pass does not depend on the weights' values, but the time of decoding does
depend on how many tokens are decoded, and random weights almost never emit the end token, so
they would decode until the limit (224 tokens a window) and time a worst case no real speech
produces. The benchmark forces an exact number of tokens per 30 s window instead
(`--tokens`, default 96: about 2.5 words a second of speech, as in conversation, plus timestamps).

Audio: `--seconds` (default 60) of seeded noise, cut into the windows the transcriber uses (30 s,
5 s overlap each side: 60 s -> 3 windows). The whole path is timed: log-mel features, encoder,
greedy decoding with the timestamp rules, parsing. Language detection is skipped (given "en") and
timed apart. Prints one JSON object with wall and CPU seconds. CPU: `--threads` (default 2, the
project's CPU budget; on a machine shared with other jobs use 1: OpenMP threads that wait for a
descheduled sibling spin, and two threads ran 15x slower than one here at load 23);
`--device cuda` runs the windows batched on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from c2f.speech.audio import SAMPLE_RATE
from c2f.speech.tiny import random_whisper
from c2f.speech.whisper import WhisperTranscriber


def measure(size: str, seconds: float, tokens: int, device: str, repeats: int) -> dict:
    t0 = time.perf_counter()
    parts = random_whisper(size)
    build_s = time.perf_counter() - t0
    transcriber = WhisperTranscriber(size, language="en", device=device, forced_new_tokens=tokens, _parts=parts)
    audio = (np.random.default_rng(0).standard_normal(round(seconds * SAMPLE_RATE)) * 0.1).astype(np.float32)
    transcriber.transcribe_audio(audio[: SAMPLE_RATE * 5])  # warm-up (first-call allocations)
    runs, cpu = [], []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t, c = time.perf_counter(), time.process_time()
        transcriber.transcribe_audio(audio)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        runs.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    t = time.perf_counter()
    transcriber.detect_language(audio)
    detect_s = time.perf_counter() - t
    best = min(runs)
    windows = 1 + max(0, int(np.ceil((seconds - 30.0) / 20.0)))
    return {
        "model": f"whisper-{size} (full-size architecture, random weights)",
        "parameters_m": round(sum(p.numel() for p in transcriber.model.parameters()) / 1e6, 1),
        "audio_s": seconds,
        "windows": windows,
        "tokens_per_window": tokens,
        "batch": transcriber.batch_size,
        "dtype": str(transcriber.dtype).replace("torch.", ""),
        "wall_s": [round(r, 2) for r in runs],
        "real_time_factor": round(seconds / best, 2),
        # CPU seconds of this process (all threads): on a shared, oversubscribed machine the wall
        # time is inflated by waiting; audio seconds per CPU second bounds what an idle core gives.
        "cpu_s": [round(c, 2) for c in cpu],
        "audio_s_per_cpu_s": round(seconds / min(cpu), 2),
        "seconds_per_window": round(best / windows, 2),
        "language_detection_s": round(detect_s, 3),
        "build_s": round(build_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["tiny", "base"], choices=["tiny", "base", "small"])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--tokens", type=int, default=96, help="tokens decoded per 30 s window (forced)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = [measure(s, args.seconds, args.tokens, args.device, args.repeats) for s in args.sizes]
    print(
        json.dumps(
            {
                "benchmark": "transcribe_speed",
                "device": args.device if args.device != "cpu" else f"cpu ({platform.processor() or platform.machine()})",
                "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
                "threads": args.threads,
                "load_average_1m": round(os.getloadavg()[0], 1),
                "torch": torch.__version__,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""Transcription speed: real-time factors (seconds of audio per wall second) of Whisper sizes.

Full-size architectures (the released configurations, vocabulary 51865) with random weights: the
time of a forward pass does not depend on the weights' values, but the time of decoding does
depend on how many tokens are decoded, and random weights almost never emit the end token, so
they would decode until the limit (224 tokens a window) and time a worst case no real speech
produces. The benchmark forces an exact number of tokens per 30 s window instead
(`--tokens`, default 96: about 2.5 words a second of speech, as in conversation, plus timestamps).

Audio: `--seconds` (default 60) of seeded noise, cut into the windows the transcriber uses (30 s,
5 s overlap each side: 60 s -> 3 windows), `--batch` windows decoded together (default: the
transcriber's, 8 on a CPU, 32 on a GPU). The whole path is timed: log-mel features, encoder,
greedy decoding with the timestamp rules, parsing. Language detection is skipped (given "en") and
timed apart. `--profile` adds a run that splits the time: log-mel, encoder, the decoder's forward
passes (c2f/speech/decoding.py StaticDecoder.logits, LM head included), the rest (rules, state,
loop, parsing): decode tokens/s and the share of time outside the model's forward. CPU:
`--threads` (default 2, the project's CPU budget; on a machine shared with other jobs use 1:
OpenMP threads that wait for a descheduled sibling spin); `--device cuda` decodes with a CUDA
graph per token step, and times the same step run eagerly once more (`--no-graphs`: eager only).
Prints one JSON object (`--out`: also written there, with the commit).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from provenance import provenance

from c2f.speech import decoding
from c2f.speech.audio import SAMPLE_RATE
from c2f.speech.tiny import random_whisper
from c2f.speech.whisper import STRIDE_SECONDS, WINDOW_SECONDS, WhisperTranscriber

SOURCE = ("c2f/speech", "benchmarks/transcribe_speed.py")


def window_count(seconds: float) -> int:
    step = WINDOW_SECONDS - 2 * STRIDE_SECONDS
    return 1 + max(0, int(np.ceil((seconds - WINDOW_SECONDS) / step)))


class Clock:
    """CPU seconds of this process on a CPU (wall time is inflated by other jobs there); wall
    seconds after a device sync on a GPU."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")

    def __call__(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            return time.perf_counter()
        return time.process_time()


@contextmanager
def timed_calls(owner, name: str, clock: Clock, totals: dict[str, float], key: str):
    """Add the time of every call of owner.name to totals[key] while inside."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = clock()
        try:
            return original(*args, **kwargs)
        finally:
            totals[key] = totals.get(key, 0.0) + clock() - start

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def profile(transcriber: WhisperTranscriber, audio: np.ndarray, tokens: int, device: str) -> dict:
    """One run split by part (it syncs a GPU at every call it times: apart from the timed runs)."""
    clock, totals = Clock(device), {}
    encoder = transcriber.model.model.encoder
    with (
        timed_calls(transcriber, "_input_features", clock, totals, "log_mel_s"),
        timed_calls(encoder, "forward", clock, totals, "encoder_s"),
        timed_calls(decoding.StaticDecoder, "logits", clock, totals, "decoder_forward_s"),
        timed_calls(decoding, "apply_rules", clock, totals, "rules_s"),
    ):
        if transcriber.decoder.graphs:  # a replayed graph hides its parts: time the eager step
            transcriber.decoder.graphs = False
            transcriber.decoder._runs.clear()
        start = clock()
        transcriber.transcribe_audio(audio)
        total = clock() - start
    forward = totals.get("encoder_s", 0.0) + totals.get("decoder_forward_s", 0.0)
    decode = total - totals.get("log_mel_s", 0.0) - totals.get("encoder_s", 0.0)
    generated = window_count(len(audio) / SAMPLE_RATE) * tokens
    return {
        "total_s": round(total, 3),
        **{k: round(v, 3) for k, v in sorted(totals.items())},
        "other_s": round(total - sum(totals.values()), 3),
        "outside_model_forward_share": round(1 - forward / total, 3),
        "decode_s": round(decode, 3),
        "decode_tokens_per_s": round(generated / decode, 1),
        "clock": "wall, synced" if clock.cuda else "process CPU time",
    }


def measure(
    size: str,
    seconds: float,
    tokens: int,
    device: str,
    repeats: int,
    batch: int | None,
    graphs: bool,
    prof: bool,
) -> dict:
    t0 = time.perf_counter()
    parts = random_whisper(size)
    build_s = time.perf_counter() - t0
    transcriber = WhisperTranscriber(
        size,
        language="en",
        device=device,
        forced_new_tokens=tokens,
        batch_size=batch,
        cuda_graphs=graphs,
        _parts=parts,
    )
    audio = (np.random.default_rng(0).standard_normal(round(seconds * SAMPLE_RATE)) * 0.1).astype(np.float32)
    t = time.perf_counter()
    transcriber.transcribe_audio(audio[: SAMPLE_RATE * 5])  # warm-up: allocations, graph capture
    warmup_s = time.perf_counter() - t
    clock = Clock(device)
    runs, cpu = [], []
    for _ in range(repeats):
        if clock.cuda:
            torch.cuda.synchronize()
        t, c = time.perf_counter(), time.process_time()
        transcriber.transcribe_audio(audio)
        if clock.cuda:
            torch.cuda.synchronize()
        runs.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    graphed = any(run.graph is not None for run in transcriber.decoder._runs.values())
    eager = None
    if transcriber.decoder.graphs:  # the same, the token step run eagerly: what the graph saves
        transcriber.decoder.graphs = False
        transcriber.decoder._runs.clear()
        transcriber.transcribe_audio(audio[: SAMPLE_RATE * 5])
        torch.cuda.synchronize()
        t = time.perf_counter()
        transcriber.transcribe_audio(audio)
        torch.cuda.synchronize()
        eager = time.perf_counter() - t
    t = time.perf_counter()
    transcriber.detect_language(audio)
    detect_s = time.perf_counter() - t
    best = min(runs)
    windows = window_count(seconds)
    result = {
        "model": f"whisper-{size} (full-size architecture, random weights)",
        "parameters_m": round(sum(p.numel() for p in transcriber.model.parameters()) / 1e6, 1),
        "audio_s": seconds,
        "windows": windows,
        "tokens_per_window": tokens,
        "batch": transcriber.batch_size,
        "cuda_graphs": graphed,
        "dtype": str(transcriber.dtype).replace("torch.", ""),
        "wall_s": [round(r, 3) for r in runs],
        "real_time_factor": round(seconds / best, 2),
        # CPU seconds of this process (all threads): on a shared, oversubscribed machine the wall
        # time is inflated by waiting; audio seconds per CPU second bounds what an idle core gives.
        "cpu_s": [round(c, 2) for c in cpu],
        "audio_s_per_cpu_s": round(seconds / min(cpu), 2),
        "tokens_per_s": round(windows * tokens / best, 1),
        "real_time_factor_eager_step": round(seconds / eager, 2) if eager else None,
        "seconds_per_window": round(best / windows, 4),
        "language_detection_s": round(detect_s, 3),
        "warmup_s": round(warmup_s, 2),
        "build_s": round(build_s, 1),
    }
    if prof:
        result["profile"] = profile(transcriber, audio, tokens, device)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["tiny", "base"], choices=["tiny", "base", "small"])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--tokens", type=int, default=96, help="tokens decoded per 30 s window (forced)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument(
        "--batch", type=int, default=None, help="windows decoded together (default: the transcriber's)"
    )
    ap.add_argument("--no-graphs", action="store_true", help="GPU: run the token step eagerly")
    ap.add_argument("--profile", action="store_true", help="add a run split by part")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = [
        measure(
            s,
            args.seconds,
            args.tokens,
            args.device,
            args.repeats,
            args.batch,
            not args.no_graphs,
            args.profile,
        )
        for s in args.sizes
    ]
    report = {
        "benchmark": "transcribe_speed",
        "provenance": provenance(SOURCE),
        "device": args.device
        if args.device != "cpu"
        else f"cpu ({platform.processor() or platform.machine()})",
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        "threads": args.threads,
        "load_average_1m": round(os.getloadavg()[0], 1),
        "torch": torch.__version__,
        "results": results,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

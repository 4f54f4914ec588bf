"""First-use tuning of the CPU encoders: dtype, batch size and memory format, chosen by measurement.

A CPU's bfloat16 flag does not predict speed: on an AMX Xeon, S3D at 160 px ran 7x slower in
bfloat16 than in float32. So each encoder times its candidate settings on its real inputs the
first time it meets an input shape on a machine, drops the settings whose embeddings leave
cosine MIN_COSINE of float32, and keeps the fastest (`c2f.tuning` caches the choice per machine).

The search over the candidates is greedy, one axis at a time (dtype, then batch, then memory
format): a candidate is timed only when it differs from the best so far in one axis. Candidates that
are clearly slower are dropped early: a warm-up that runs DOMINATED_WARM_UP times longer per item than
the quickest accepted warm-up so far is stopped where it is (at its next module call; emulated
bfloat16 S3D under an AVX2 limit ran ~100x slower than float32, so its warm-up alone took ~50 s),
and a candidate whose timed run is DOMINATED times slower than the best is not timed again. A
dropped candidate is never chosen: the choice is the fastest of the candidates timed to the end,
all of which passed the accuracy bound. That keeps the first use of the full-size models short.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from c2f import tuning
from c2f.device import forced_cpu_bf16
from c2f.tuning import Choice, Setting, TuningOverrideError

if TYPE_CHECKING:
    from c2f.features.settings import FeatureSettings

MIN_COSINE = 0.9999  # per-row cosine to float32 that a faster setting must keep
DOMINATED = 1.5  # a timed run this many times slower per item than the best so far: no more runs
# a warm-up this many times longer per item than the quickest accepted one is stopped: warm-ups carry
# one-time costs (kernel choice, weight reorders) that differ between candidates, hence a wider margin
DOMINATED_WARM_UP = 3.0
REPEATS = 2  # timed runs per candidate after the warm-up; the least disturbed (min) counts
LONG_RUN_S = 1.0  # a warm-up longer than this: one timed run only; no warm-up is stopped before it

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
MEMORY_FORMATS = {
    "contiguous": torch.contiguous_format,
    "channels_last": torch.channels_last,
    "channels_last_3d": torch.channels_last_3d,
}

# run(setting) -> embeddings (n, d) of the first n tuning inputs (n = setting's batch)
RunFn = Callable[[Setting], torch.Tensor]
Clock = Callable[[], float]  # seconds


class _Stopped(Exception):
    """Raised at a module call of a run that has passed its time limit."""


@contextlib.contextmanager
def stop_after(limit_s: float | None, clock: Clock = time.perf_counter) -> Iterator[None]:
    """Within the block, the first nn.Module call of this thread after `limit_s` seconds raises
    _Stopped (None: no limit). A forward pre-hook on every module, so that a run of a model can be cut
    short between its layers without the model knowing; other threads' calls pass through."""
    if limit_s is None:
        yield
        return
    start, thread = clock(), threading.get_ident()

    def check(module: torch.nn.Module, args: tuple) -> None:
        if threading.get_ident() == thread and clock() - start > limit_s:
            raise _Stopped

    handle = torch.nn.modules.module.register_module_forward_pre_hook(check)
    try:
        yield
    finally:
        handle.remove()


def dtype_names() -> list[str]:
    """float32 first (the safe default and the accuracy reference), unless C2F_CPU_BF16 forces one."""
    forced = forced_cpu_bf16()
    if forced is None:
        return ["float32", "bfloat16"]
    return ["bfloat16"] if forced else ["float32"]


def shape_key(shape: str) -> str:
    """A forced dtype is part of the cache key, so forcing it never overwrites the measured choice."""
    forced = forced_cpu_bf16()
    return shape if forced is None else f"{shape} C2F_CPU_BF16={int(forced)}"


def greedy_grid(axes: dict[str, Sequence]) -> list[Setting]:
    """Every combination, the first axis varying fastest, each axis's first value its default."""
    names = list(axes)
    combos = itertools.product(*(axes[n] for n in reversed(names)))
    return [dict(zip(names, reversed(c), strict=True)) for c in combos]


def min_row_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Smallest per-row cosine between two (n, d) embedding batches (in float64: exact enough to
    tell 1 - 1e-7 from 1)."""
    return float(F.cosine_similarity(a.double(), b.double(), dim=-1).min())


def dtype_of(setting: Setting) -> torch.dtype:
    try:
        return DTYPES[setting["dtype"]]
    except KeyError:
        raise TuningOverrideError(
            f"a C2F_TUNE_* setting names dtype {setting.get('dtype')!r}; use one of {sorted(DTYPES)}"
        ) from None


def batch_of(setting: Setting) -> int:
    batch = setting.get("batch")
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise TuningOverrideError(f"a C2F_TUNE_* setting names batch {batch!r}; use a positive whole number")
    return batch


def memory_format_of(setting: Setting) -> torch.memory_format:
    try:
        return MEMORY_FORMATS[setting.get("memory_format", "contiguous")]
    except KeyError:
        raise TuningOverrideError(
            f"a C2F_TUNE_* setting names memory_format {setting.get('memory_format')!r}; "
            f"use one of {sorted(MEMORY_FORMATS)}"
        ) from None


def tune(
    task: str,
    shape: str,
    axes: dict[str, Sequence],
    run: RunFn,
    min_cosine: float = MIN_COSINE,
    repeats: int = REPEATS,
    clock: Clock = time.perf_counter,
) -> Choice:
    """Choose among the settings of `axes` (first values = the default) for `task` on inputs of
    `shape`. The first float32 candidate's output is the accuracy reference; a setting whose
    embeddings fall below `min_cosine` to it (per row, min over the batch) is rejected. Clearly
    slower candidates are dropped early (module docstring); `clock` times everything."""
    best: list = []  # [seconds per item, setting] of the best accepted candidate so far
    quickest_warm_up: list = []  # [seconds per item, items] of the quickest accepted warm-up so far
    reference: list[torch.Tensor] = []

    def measure(setting: Setting) -> float | None:
        if best and sum(setting[k] != best[1][k] for k in setting) > 1:
            raise tuning.Skip
        limit = items = None
        if quickest_warm_up:  # the candidates share inputs: `items` rows unless a batch is named
            items = setting.get("batch", quickest_warm_up[1])
            limit = max(LONG_RUN_S, DOMINATED_WARM_UP * quickest_warm_up[0] * items)
        t0 = clock()
        try:
            with stop_after(limit, clock):
                out = run(setting)  # warm-up: kernels are picked (and oneDNN primitives built) here
        except _Stopped:
            spent = clock() - t0
            raise tuning.Dominated(
                spent / items, f"warm-up stopped after {spent:.2f} s (> {DOMINATED_WARM_UP}x the quickest)"
            ) from None
        warm_up = clock() - t0
        if not reference and setting["dtype"] == "float32":
            reference.append(out.float())
        elif reference:
            k = min(len(out), len(reference[0]))
            cosine = min_row_cosine(out[:k], reference[0][:k])
            if cosine < min_cosine:
                raise tuning.Reject(f"cosine {cosine:.6f} to float32 < {min_cosine}")
        n = len(out)
        if not quickest_warm_up or warm_up / n < quickest_warm_up[0]:
            quickest_warm_up[:] = [warm_up / n, n]
        runs: list[float] = []
        # a long run (full-size S3D) is its own average: one timed run keeps first use short
        planned = 1 if warm_up > LONG_RUN_S else repeats
        for _ in range(planned):
            t0 = clock()
            run(setting)
            runs.append(clock() - t0)
            if best and min(runs) / n > DOMINATED * best[0]:
                raise tuning.Dominated(
                    min(runs) / n, f"timed {len(runs)} of {planned} times: > {DOMINATED}x the best"
                )
        seconds = min(runs) / n
        if not best or seconds < best[0]:
            best[:] = [seconds, setting]
        return seconds

    with torch.inference_mode():
        return tuning.choose(task, shape_key(shape), greedy_grid(axes), measure)


def tile_rows(x: torch.Tensor, n: int) -> torch.Tensor:
    """The first n rows of x repeated along dim 0 as often as needed: tuning batches from the real
    inputs, however few there are."""
    reps = -(-n // len(x))
    return x.repeat(reps, *([1] * (x.dim() - 1)))[:n] if reps > 1 else x[:n]


def tune_preset(settings: FeatureSettings, device: torch.device | str | None = None) -> list[Choice]:
    """Run (or load from the cache) the tuning of every encoder a feature preset uses, on seeded
    noise of the real input shapes; returns the choices in force (`c2f doctor --tune`)."""
    from c2f.encoders.registry import create_clip_encoder, create_s3d_encoder, forget_encoders

    forget_encoders()  # encoders built earlier in this process keep the setting they were tuned with
    clip = create_clip_encoder(settings, device)
    clip.tune_images()
    clip.tune_text()
    if settings.uses_s3d:
        s3d = create_s3d_encoder(settings, device)
        if hasattr(s3d, "setting"):  # encoders without tuned settings (S3D-G) run as they are
            s3d.setting(settings.s3d_frames_per_clip)
    return tuning.choices_made()

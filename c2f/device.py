"""Device selection in one place: the GPU when present, the CPU otherwise. No `.cuda()` anywhere else."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator

import torch

from c2f.environment import env_flag


def pick_device(requested: str | None = None) -> torch.device:
    """`requested` ('cpu', 'cuda', 'cuda:1', 'auto' or None). Env C2F_DEVICE overrides 'auto'."""
    choice = requested or os.environ.get("C2F_DEVICE") or "auto"
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(choice)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{choice}' was asked for but no CUDA GPU is available")
    return dev


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Half precision where it is safe (CUDA); full precision on the CPU. Not for the `value`
    extraction, which keeps the reference's dtypes (`full_precision`)."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


@contextlib.contextmanager
def full_precision() -> Iterator[None]:
    """Every op in the dtype of its weights (the `value` extraction's reference precision): autocast
    off on the CPU and on CUDA, whatever a caller enabled around us, and no TF32 on CUDA (float32
    convolutions and matmuls would otherwise round their inputs to 10 bits). The TF32 switches are
    process-wide: set for the duration, then restored."""
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
            yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32


def forced_cpu_bf16() -> bool | None:
    """C2F_CPU_BF16=1 forces the CPU encoders into bfloat16, =0 into float32; None (unset) lets
    them measure which is faster here (c2f/encoders/tuning.py). Another value is an
    EnvironmentSettingError."""
    return env_flag("C2F_CPU_BF16", None)  # another value is refused in one line, never ignored


@functools.cache
def cpu_has_bf16_flag() -> bool:
    """Whether the CPU advertises bfloat16 arithmetic (AVX512-BF16 or AMX). Reported by `c2f
    doctor` only: the flag does not predict speed (S3D at 160 px ran 7x slower in bfloat16 than in
    float32 on an AMX Xeon), so the encoders measure instead of trusting it."""
    try:  # private helpers of torch.cpu; absent in some builds: then assume no
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


def cpu_has_native_bf16() -> bool:
    """C2F_CPU_BF16 when set, else the CPU's bfloat16 flag: the bfloat16 path this run stands for
    (the CI runs). The encoders do not use it: they measure (c2f/encoders/tuning.py)."""
    forced = forced_cpu_bf16()
    return cpu_has_bf16_flag() if forced is None else forced


_KERNEL_PROBE = """
import torch
with torch.no_grad():
    torch.nn.Conv2d(16, 16, 3)(torch.randn(2, 16, 12, 12))  # a oneDNN primitive: it reports its ISA
print("aten:", torch.backends.cpu.get_cpu_capability())
"""


def kernels_in_force() -> dict[str, str | None]:
    """The CPU kernels torch (ATen) and oneDNN really use under the limits of this environment
    (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA), read from a child process: oneDNN names its ISA only
    when ONEDNN_VERBOSE is set before it starts."""
    import subprocess
    import sys

    try:
        done = subprocess.run(
            [sys.executable, "-c", _KERNEL_PROBE],
            capture_output=True,
            text=True,
            env={**os.environ, "ONEDNN_VERBOSE": "1"},
            timeout=120,
        )
        lines = (done.stdout + done.stderr).splitlines()
    except (OSError, subprocess.SubprocessError):
        lines = []
    isa = next((ln.split("isa:", 1)[1].strip() for ln in lines if ",info,cpu,isa:" in ln), None)
    aten = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("aten:")), None)
    return {
        "aten_capability": aten,
        "onednn_isa": isa,
        "ATEN_CPU_CAPABILITY": os.environ.get("ATEN_CPU_CAPABILITY"),
        "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA"),
    }

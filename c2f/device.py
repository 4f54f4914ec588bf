"""Device selection in one place: the GPU when present, the CPU otherwise. No `.cuda()` anywhere else."""

from __future__ import annotations

import os

import torch


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
    """Half precision where it is safe (CUDA); full precision on the CPU."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None

"""One registry for encoders: feature settings -> encoder instances, cached per (arch, weights, device)."""

from __future__ import annotations

import functools

import torch

from c2f.device import pick_device
from c2f.encoders.clip import ClipEncoder
from c2f.encoders.milnce_s3dg import MilNceS3DGEncoder
from c2f.encoders.s3d import S3DEncoder
from c2f.features.settings import FeatureSettings


@functools.lru_cache(maxsize=8)
def _clip(arch: str, weights: str, device: str) -> ClipEncoder:
    return ClipEncoder(arch, weights, device)


@functools.lru_cache(maxsize=4)
def _s3d(weights: str, image_size: int, device: str) -> S3DEncoder:
    return S3DEncoder(weights, image_size, device)


@functools.lru_cache(maxsize=4)
def _s3dg(weights: str, image_size: int, device: str) -> MilNceS3DGEncoder:
    return MilNceS3DGEncoder(weights, image_size, device)


def create_clip_encoder(settings: FeatureSettings, device: torch.device | str | None = None) -> ClipEncoder:
    dev = pick_device(str(device) if device is not None else None)
    return _clip(settings.clip_model, settings.clip_weights, str(dev))


def create_s3d_encoder(
    settings: FeatureSettings, device: torch.device | str | None = None
) -> S3DEncoder | MilNceS3DGEncoder:
    if settings.s3d_weights is None:
        raise ValueError(f"preset {settings.preset!r} has no S3D stream")
    dev = pick_device(str(device) if device is not None else None)
    if settings.s3d_model == "s3dg":
        return _s3dg(settings.s3d_weights, settings.s3d_image_size, str(dev))
    return _s3d(settings.s3d_weights, settings.s3d_image_size, str(dev))


def forget_encoders() -> None:
    """Drop the cached encoder instances, so the next ones are built (and tuned) anew."""
    for cached in (_clip, _s3d, _s3dg):
        cached.cache_clear()

"""S3D (torchvision, Kinetics-400): one 1024-d vector per clip of frames, from `features`."""

from __future__ import annotations

import copy
import itertools
import threading

import numpy as np
import torch
from torch import nn

from c2f.device import autocast_dtype, pick_device
from c2f.encoders.clip import resize_center_crop
from c2f.encoders.tuning import batch_of, dtype_names, dtype_of, memory_format_of, tile_rows, tune
from c2f.tuning import Choice, Setting
from c2f.weights import resolve_weights

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
# CPU candidates, defaults first. Small batches keep S3D's large activations in cache (per clip,
# batch 1 took 68 ms and batch 8 105 ms in bfloat16 on one CPU); which one wins, and whether
# channels_last_3d helps, depends on the CPU, the dtype and the input size: measured.
CPU_BATCHES = [2, 1, 4]
MEMORY_AXIS = ["channels_last_3d", "contiguous"]


class S3DEncoder:
    dim = 1024

    def __init__(self, weights: str, image_size: int = 224, device: torch.device | str | None = None) -> None:
        from torchvision.models.video import s3d

        self.weights, self.image_size = weights, image_size
        self.device = pick_device(str(device) if device is not None else None)
        if weights == "random":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = s3d(weights=None)
        else:
            model = s3d(weights=None)
            model.load_state_dict(_load_state_dict(resolve_weights(f"s3d:{weights}")))
        # Only the feature trunk is used; the classifier is dropped. Folding each BatchNorm into
        # its convolution gives the same outputs (to float rounding) for ~10 % less CPU time.
        self.trunk = fold_batchnorm(model.features.eval()).to(self.device)  # float32 master
        self._variants: dict[tuple[str, str], nn.Module] = {("float32", "contiguous"): self.trunk}
        self._settings: dict[int, Setting] = {}  # frames per clip -> dtype, batch, memory format
        self._lock = threading.Lock()
        self.mean = torch.tensor(KINETICS_MEAN, device=self.device).view(1, 3, 1, 1, 1)
        self.std = torch.tensor(KINETICS_STD, device=self.device).view(1, 3, 1, 1, 1)
        self._amp = autocast_dtype(self.device)

    def setting(self, frames: int, sample: torch.Tensor | None = None) -> Setting:
        """dtype, batch and memory format for clips of `frames` frames: on CUDA float32 weights under
        autocast, 8 clips a call; on a CPU measured on first use (`sample`: normalised clips
        (b, 3, T, S, S) to time on, seeded noise when None), then cached."""
        with self._lock:
            if frames not in self._settings:
                if self.device.type == "cuda":
                    chosen = {"dtype": "float32", "batch": 8, "memory_format": "contiguous"}
                else:
                    chosen = self._tune(frames, sample).setting
                self._variant(chosen), batch_of(chosen)  # an override naming an unknown value fails here
                self._settings[frames] = chosen
                # keep the float32 master (another clip length may need it) and the chosen copies
                used = {(st["dtype"], st["memory_format"]) for st in self._settings.values()}
                self._variants = {k: v for k, v in self._variants.items() if k in used or v is self.trunk}
            return self._settings[frames]

    def _tune(self, frames: int, sample: torch.Tensor | None) -> Choice:
        if sample is None:
            gen = torch.Generator().manual_seed(0)
            sample = torch.randn(max(CPU_BATCHES), 3, frames, self.image_size, self.image_size, generator=gen)
        inputs = tile_rows(sample, max(CPU_BATCHES))
        axes = {"dtype": dtype_names(), "batch": CPU_BATCHES, "memory_format": MEMORY_AXIS}
        return tune(
            "s3d",
            f"{self.weights} {frames}x{self.image_size}px",
            axes,
            lambda st: self._forward(inputs[: st["batch"]], st),
        )

    def _variant(self, setting: Setting) -> nn.Module:
        """The trunk in the setting's dtype and memory format (copies made once, on demand)."""
        key = (setting["dtype"], setting.get("memory_format", "contiguous"))
        if key not in self._variants:
            trunk = copy.deepcopy(self.trunk).to(dtype_of(setting))
            self._variants[key] = trunk.to(memory_format=memory_format_of(setting))
        return self._variants[key]

    @property
    def dtype(self) -> torch.dtype | None:
        """The weights' dtype chosen so far (None before the first clip is encoded)."""
        dtypes = {dtype_of(st) for st in self._settings.values()}
        return dtypes.pop() if len(dtypes) == 1 else None

    def _input(self, clips: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 (b, T, H, W, 3) -> normalised float32 (b, 3, T, S, S) on the device."""
        x = torch.as_tensor(clips).to(self.device)  # (b, T, H, W, 3)
        b, t = x.shape[:2]
        x = x.flatten(0, 1).permute(0, 3, 1, 2).float().div_(255.0)  # (b*T, 3, H, W)
        x = resize_center_crop(x, self.image_size)
        x = x.view(b, t, 3, self.image_size, self.image_size).permute(0, 2, 1, 3, 4)  # (b, 3, T, S, S)
        return (x - self.mean) / self.std

    def _forward(self, x: torch.Tensor, setting: Setting) -> torch.Tensor:
        """normalised (b, 3, T, S, S) -> (b, 1024) float32, in the setting's dtype and memory format."""
        x = x.to(dtype_of(setting)).contiguous(memory_format=memory_format_of(setting))
        with torch.autocast(self.device.type, dtype=self._amp, enabled=self._amp is not None):
            f = self._variant(setting)(x)  # (b, 1024, T', H', W')
        return f.float().mean(dim=(2, 3, 4))

    @torch.inference_mode()
    def encode_clips(self, clips: np.ndarray | torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """uint8 (B, T, H, W, 3) -> (B, 1024) float32 (not normalised), on the CPU."""
        if len(clips) == 0:
            return torch.zeros(0, self.dim)
        frames = int(clips.shape[1])
        setting = self._settings.get(frames) or self.setting(frames, self._input(clips[: max(CPU_BATCHES)]))
        batch_size = batch_size or batch_of(setting)
        out = []
        for s in range(0, len(clips), batch_size):
            out.append(self._forward(self._input(clips[s : s + batch_size]), setting).cpu())
        return torch.cat(out)


def fold_batchnorm(features: nn.Module) -> nn.Module:
    """Replace every Conv3d -> BatchNorm3d pair (eval mode) by one convolution, in place."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for seq in features.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        names = list(seq._modules)
        for conv_name, bn_name in itertools.pairwise(names):
            conv, bn = seq._modules[conv_name], seq._modules[bn_name]
            if isinstance(conv, nn.Conv3d) and isinstance(bn, nn.BatchNorm3d):
                seq._modules[conv_name] = fuse_conv_bn_eval(conv, bn)
                seq._modules[bn_name] = nn.Identity()
    return features


def _load_state_dict(path) -> dict[str, torch.Tensor]:
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(str(path), map_location="cpu", weights_only=True)

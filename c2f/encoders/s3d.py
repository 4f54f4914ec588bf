"""S3D (torchvision, Kinetics-400): one 1024-d vector per clip of frames, from `features`."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from c2f.device import autocast_dtype, encoder_weight_dtype, pick_device
from c2f.encoders.clip import resize_center_crop
from c2f.weights import resolve_weights

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


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
        self.dtype = encoder_weight_dtype(self.device)  # bfloat16 on a CPU with native bf16 (~1.8x)
        self.features = fold_batchnorm(model.features.eval()).to(self.device, self.dtype)
        if self.device.type == "cpu":
            self.features = self.features.to(memory_format=torch.channels_last_3d)
        self.mean = torch.tensor(KINETICS_MEAN, device=self.device).view(1, 3, 1, 1, 1)
        self.std = torch.tensor(KINETICS_STD, device=self.device).view(1, 3, 1, 1, 1)
        self._amp = autocast_dtype(self.device)
        # Clips per forward pass. On the CPU small batches keep S3D's large activations in cache:
        # per clip, batch 1 took 68 ms and batch 8 105 ms in bfloat16; in float32 batch 2 was best.
        if self.device.type == "cuda":
            self.batch_size = 8
        else:
            self.batch_size = 1 if self.dtype == torch.bfloat16 else 2

    @torch.inference_mode()
    def encode_clips(self, clips: np.ndarray | torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """uint8 (B, T, H, W, 3) -> (B, 1024) float32 (not normalised), on the CPU."""
        batch_size = batch_size or self.batch_size
        out = []
        for s in range(0, len(clips), batch_size):
            x = torch.as_tensor(clips[s : s + batch_size]).to(self.device)  # (b, T, H, W, 3)
            b, t = x.shape[:2]
            x = x.flatten(0, 1).permute(0, 3, 1, 2).float().div_(255.0)  # (b*T, 3, H, W)
            x = resize_center_crop(x, self.image_size)
            x = x.view(b, t, 3, self.image_size, self.image_size).permute(0, 2, 1, 3, 4)  # (b, 3, T, S, S)
            x = ((x - self.mean) / self.std).to(self.dtype).contiguous(
                memory_format=torch.channels_last_3d if self.device.type == "cpu" else torch.contiguous_format
            )
            with torch.autocast(self.device.type, dtype=self._amp, enabled=self._amp is not None):
                f = self.features(x)  # (b, 1024, T', H', W')
            out.append(f.float().mean(dim=(2, 3, 4)).cpu())
        return torch.cat(out) if out else torch.zeros(0, self.dim)


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

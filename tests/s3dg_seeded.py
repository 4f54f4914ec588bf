"""Seeded, non-trivial weights for the S3D-G equality test, filled by parameter name.

The reference implementation and C2F's port share the checkpoint's key names, so filling every
floating tensor from one generator in sorted key order gives both models the same weights. The
one-off script that made `fixtures/s3dg_reference.npz` used this very function.
"""

from __future__ import annotations

import torch
from torch import nn

S3DG_FIXTURE_SEED = 1234


@torch.no_grad()
def seeded_fill(model: nn.Module, seed: int = S3DG_FIXTURE_SEED) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    for key in sorted(state):
        t = state[key]
        if not t.is_floating_point():
            continue  # BatchNorm's num_batches_tracked
        if key.endswith("running_var") or (".bn" in key and key.endswith("weight")):
            values = torch.rand(t.shape, generator=g) + 0.5  # in [0.5, 1.5): non-trivial statistics
        elif key.endswith(("running_mean", "bias")):
            values = torch.randn(t.shape, generator=g) * 0.1
        else:  # convolution / linear / embedding weights, He scale: activations stay O(1) in depth
            fan_in = t[0].numel() if t.dim() > 1 else 1
            values = torch.randn(t.shape, generator=g) * (2.0 / fan_in) ** 0.5
        t.copy_(values)
    return model.eval()

"""The CUDA path agrees with the CPU path (half-precision autocast on the GPU, float32 on the CPU).

Skipped where no CUDA GPU is present (CI has none); run on a GPU machine with
`pytest tests/test_gpu.py`. Full-size architectures with seeded random weights: agreement between
devices does not depend on the weights being trained.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from c2f.encoders.clip import ClipEncoder
from c2f.encoders.s3d import S3DEncoder
from c2f.features import get_preset
from c2f.features.extract import extract_features

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _min_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((F.normalize(a.float(), dim=-1) * F.normalize(b.float(), dim=-1)).sum(-1).min())


def test_clip_image_and_text_embeddings_match_cpu():
    cpu = ClipEncoder("ViT-B-32", "random", "cpu")
    gpu = ClipEncoder("ViT-B-32", "random", "cuda")
    frames = np.random.default_rng(0).integers(0, 255, (12, 224, 398, 3), dtype=np.uint8)
    a, b = cpu.encode_images(frames), gpu.encode_images(frames)
    assert a.shape == b.shape == (12, 512) and b.device.type == "cpu"
    assert _min_cosine(a, b) > 0.99
    texts = ["she hands him the keys", "a dog runs on the beach"]
    ta, tb = cpu.encode_text(texts), gpu.encode_text(texts)
    assert _min_cosine(ta.pooled, tb.pooled) > 0.99
    assert torch.equal(ta.mask, tb.mask)


def test_s3d_clip_features_match_cpu():
    cpu = S3DEncoder("random", 224, "cpu")  # random weights are seeded: the same on both devices
    gpu = S3DEncoder("random", 224, "cuda")
    clips = np.random.default_rng(1).integers(0, 255, (3, 16, 224, 300, 3), dtype=np.uint8)
    a, b = cpu.encode_clips(clips), gpu.encode_clips(clips)
    assert a.shape == b.shape == (3, 1024)
    assert _min_cosine(a, b) > 0.99


@pytest.mark.skipif(not os.environ.get("C2F_TEST_VIDEO"), reason="set C2F_TEST_VIDEO to a short video")
def test_extract_features_on_gpu_matches_cpu():
    video = Path(os.environ["C2F_TEST_VIDEO"])
    settings = replace(get_preset("default"), clip_weights="random", s3d_weights="random")
    a = extract_features(video, settings, device="cpu")
    b = extract_features(video, settings, device="cuda")
    assert a.features.shape == b.features.shape and a.features.shape[1] == 1536
    np.testing.assert_array_equal(a.clip_times, b.clip_times)
    fa, fb = torch.from_numpy(a.features), torch.from_numpy(b.features)
    assert _min_cosine(fa[:, :512], fb[:, :512]) > 0.99
    assert _min_cosine(fa[:, 512:], fb[:, 512:]) > 0.99

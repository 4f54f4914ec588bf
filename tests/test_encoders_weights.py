"""Encoders and the weights registry: pretrained options, exact BN folding, batching, clear errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from c2f.encoders import create_clip_encoder, create_s3d_encoder
from c2f.encoders.clip import ClipEncoder, pretrained_kwargs
from c2f.encoders.s3d import S3DEncoder, fold_batchnorm
from c2f.errors import CheckpointError, MissingWeightsError
from c2f.features import get_preset
from c2f.weights import describe_missing, resolve_weights

TINY = get_preset("tiny")


def test_openai_clip_from_a_file_keeps_quick_gelu():
    # open_clip only applies the tag's QuickGELU when it downloads by tag; from a file we must.
    assert pretrained_kwargs("ViT-B-32", "openai") == {"force_quick_gelu": True}
    assert pretrained_kwargs("ViT-B-32", "laion2b_s34b_b79k") == {"force_quick_gelu": False}


def test_registry_caches_per_device_and_weights():
    assert create_clip_encoder(TINY) is create_clip_encoder(TINY, device="cpu")
    assert create_s3d_encoder(TINY) is create_s3d_encoder(TINY)
    with pytest.raises(ValueError, match="no S3D stream"):
        create_s3d_encoder(get_preset("tiny-clip-only"))


def test_tiny_encoders_are_deterministic_across_instances():
    frames = np.random.default_rng(3).integers(0, 255, (2, 8, 64, 64, 3), dtype=np.uint8)
    a, b = ClipEncoder("c2f-tiny-ViT", "random", "cpu"), ClipEncoder("c2f-tiny-ViT", "random", "cpu")
    torch.testing.assert_close(a.encode_images(frames[0]), b.encode_images(frames[0]))
    fresh = S3DEncoder("random", 64, "cpu")  # vs the registry's cached one
    torch.testing.assert_close(fresh.encode_clips(frames), create_s3d_encoder(TINY).encode_clips(frames))


def test_s3d_batched_equals_unbatched():
    enc = create_s3d_encoder(TINY)
    clips = np.random.default_rng(4).integers(0, 255, (3, 8, 64, 80, 3), dtype=np.uint8)
    whole = enc.encode_clips(clips, batch_size=3)
    one_by_one = torch.cat([enc.encode_clips(clips[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(whole, one_by_one, atol=1e-4, rtol=1e-4)


def test_batchnorm_folding_is_exact():
    from torchvision.models.video import s3d

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        trunk = s3d(weights=None).features.eval()
        for m in trunk.modules():  # non-trivial statistics, as trained weights have
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.normal_(0, 0.2)
        x = torch.randn(1, 3, 16, 64, 64)
    folded = fold_batchnorm(copy.deepcopy(trunk))
    assert not any(isinstance(m, nn.BatchNorm3d) for m in folded.modules())
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), trunk(x), atol=1e-4, rtol=1e-4)


def test_weights_found_in_checkpoints_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("C2F_CHECKPOINTS", str(tmp_path))
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "ViT-B-32-openai.safetensors").write_bytes(b"x")
    assert resolve_weights("clip:ViT-B-32:openai") == tmp_path / "clip" / "ViT-B-32-openai.safetensors"


def test_corrupt_s3d_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("C2F_CHECKPOINTS", str(tmp_path))
    (tmp_path / "s3d").mkdir()
    (tmp_path / "s3d" / "s3d-d76dad2f.pth").write_bytes(b"truncated download")
    with pytest.raises(CheckpointError, match=r"s3d-d76dad2f\.pth.*does not match"):
        resolve_weights("s3d:KINETICS400_V1")


def test_missing_clip_weights_name_file_and_both_places(tmp_path, monkeypatch):
    monkeypatch.setenv("C2F_CHECKPOINTS", str(tmp_path / "ckpt"))
    monkeypatch.setenv("C2F_OFFLINE", "1")
    with pytest.raises(MissingWeightsError) as exc:
        resolve_weights("clip:ViT-B-32:openai")
    msg = str(exc.value)
    assert str(tmp_path / "ckpt" / "clip" / "open_clip_model.safetensors") in msg
    assert "Hugging Face cache" in msg and "timm/vit_base_patch32_clip_224.openai" in msg
    assert "--preset tiny" in msg
    assert describe_missing("clip:ViT-B-32:openai") == msg


def test_unknown_weights_name():
    with pytest.raises(MissingWeightsError, match="known weights name"):
        resolve_weights("clip:ViT-H-14:nope")


def test_cpu_bfloat16_encoders_agree_with_float32(monkeypatch):
    """C2F_CPU_BF16 forces the dtype; bf16 weights change embeddings by rounding only."""
    frames = np.random.default_rng(3).integers(0, 255, (4, 64, 96, 3), dtype=np.uint8)
    clips = np.random.default_rng(4).integers(0, 255, (2, 8, 64, 96, 3), dtype=np.uint8)
    out = {}
    # S3D's batch and layout pinned (their measurement is tested with CLIP): only the dtype is asked
    monkeypatch.setenv("C2F_TUNE_S3D", '{"batch": 2, "memory_format": "channels_last_3d"}')
    for flag in ("0", "1"):
        monkeypatch.setenv("C2F_CPU_BF16", flag)
        clip = ClipEncoder(TINY.clip_model, "random", "cpu")
        s3d = S3DEncoder("random", TINY.s3d_image_size, "cpu")
        text = clip.encode_text(["she hands him the keys"])
        img, vid = clip.encode_images(frames), s3d.encode_clips(clips)
        # the forced dtype, whatever the measurement would pick (batch and layout are still measured)
        assert clip.dtype == s3d.dtype == (torch.bfloat16 if flag == "1" else torch.float32)
        assert img.dtype == vid.dtype == text.pooled.dtype == torch.float32
        out[flag] = (img, text.pooled, torch.nn.functional.normalize(vid, dim=-1))
    for a, b in zip(out["0"], out["1"], strict=True):
        assert (a * b).sum(-1).min() > 0.999

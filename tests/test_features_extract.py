"""Encoders and clip features with the tiny random models: shapes, times, determinism, round trips."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from videogen import make_text_file_as_video, make_video

from c2f.encoders import create_clip_encoder, create_s3d_encoder
from c2f.errors import FeatureMismatchError, MissingWeightsError, NotAVideoError
from c2f.features import get_preset, load_features, save_features
from c2f.features.extract import extract_features

TINY = get_preset("tiny")


def test_clip_encoder_shapes_normalised_and_batch_invariant():
    enc = create_clip_encoder(TINY)
    frames = np.random.default_rng(0).integers(0, 255, (7, 48, 80, 3), dtype=np.uint8)
    whole = enc.encode_images(frames)
    parts = torch.cat([enc.encode_images(frames[:3], batch_size=2), enc.encode_images(frames[3:])])
    assert whole.shape == (7, enc.image_dim)
    torch.testing.assert_close(whole.norm(dim=1), torch.ones(7))
    torch.testing.assert_close(whole, parts, atol=1e-5, rtol=1e-4)
    raw = enc.encode_images(frames, normalize=False)  # open_clip's encode_image output, as VALUE keeps it
    assert not torch.allclose(raw.norm(dim=1), torch.ones(7))
    torch.testing.assert_close(torch.nn.functional.normalize(raw, dim=-1), whole, atol=1e-5, rtol=1e-4)


def test_clip_preprocessing_matches_open_clip_transform():
    import open_clip

    enc = create_clip_encoder(TINY)
    _, _, transform = open_clip.create_model_and_transforms("c2f-tiny-ViT", pretrained=None)
    # a smooth picture (noise would make any two resamplers disagree)
    yy, xx = np.mgrid[0:90, 0:160]
    frame = np.stack([xx * 255 / 160, yy * 255 / 90, (xx + yy) % 200], axis=-1).astype(np.uint8)
    ours = enc.preprocess(frame[None])[0]
    theirs = transform(Image.fromarray(frame))
    # PIL's bicubic and torch's antialiased bicubic differ by rounding only
    assert (ours - theirs).abs().mean() < 0.03


def test_text_embedding_pooled_and_tokens():
    enc = create_clip_encoder(TINY)
    emb = enc.encode_text(["she hands him the keys", "a", "über café ☕"])
    assert emb.pooled.shape == (3, enc.text_dim)
    assert emb.tokens.shape == (3, enc.context_length, enc.token_dim)
    assert emb.mask[:, 0].all() and emb.mask.sum(1).tolist()[1] == 3  # <start> a <end>
    # the pooled vector is the projected end-token state
    eot = emb.mask.sum(1) - 1
    model = enc.model
    proj = emb.tokens[torch.arange(3), eot] @ model.text_projection.detach().float()
    torch.testing.assert_close(torch.nn.functional.normalize(proj, dim=-1), emb.pooled, atol=1e-5, rtol=1e-4)


def test_s3d_encoder_shape():
    enc = create_s3d_encoder(TINY)
    clips = np.random.default_rng(2).integers(0, 255, (3, 8, 64, 96, 3), dtype=np.uint8)
    out = enc.encode_clips(clips, batch_size=2)
    assert out.shape == (3, 1024) and torch.isfinite(out).all()


@pytest.mark.parametrize("seconds", [1.0, 3.0, 4.6])
def test_feature_shapes_and_clip_times(video_dir, seconds):
    path = make_video(video_dir / f"v{seconds}.mp4", seconds=seconds)
    feats = extract_features(path, TINY)
    n = max(1, math.ceil(seconds / 1.5 - 1e-6))
    assert feats.features.shape == (n, 64 + 1024)
    assert feats.streams == [("clip", 64), ("s3d", 1024)]
    expected_starts = np.arange(n) * 1.5
    np.testing.assert_allclose(feats.clip_times[:, 0], expected_starts)
    np.testing.assert_allclose(
        feats.clip_times[:, 1], np.minimum(expected_starts + 1.5, feats.video.duration)
    )
    for name in ("clip", "s3d"):
        np.testing.assert_allclose(np.linalg.norm(feats.stream(name), axis=1), 1.0, atol=1e-5)


def test_planted_segments_give_equal_vectors_within_a_colour(video_dir):
    # red 0-3 s, blue 3-6 s, red 6-7.4 s: clips of one colour are identical, colours differ.
    path = make_video(video_dir / "seg.mp4", segments=[("red", 3.0), ("blue", 3.0), ("red", 1.4)])
    clip = extract_features(path, get_preset("tiny-clip-only")).features
    assert clip.shape == (5, 64)
    sims = clip @ clip.T
    np.testing.assert_allclose(sims[0, [1, 4]], 1.0, atol=1e-4)
    np.testing.assert_allclose(sims[2, 3], 1.0, atol=1e-4)
    assert sims[0, 2] < 0.99


def test_progress_and_round_trip(video_dir, tmp_path):
    path = make_video(video_dir / "clip.webm", seconds=2.5)
    seen = []
    feats = extract_features(path, TINY, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == pytest.approx(seen[-1][1])
    out = save_features(feats, tmp_path / "f.safetensors")
    back = load_features(out, expected=TINY)
    np.testing.assert_array_equal(back.features, feats.features)
    assert back.settings == TINY and back.video == feats.video
    with pytest.raises(FeatureMismatchError, match="s3d_weights"):
        load_features(out, expected=get_preset("tiny-clip-only"))


def test_bad_video_is_a_typed_error(video_dir):
    with pytest.raises(NotAVideoError):
        extract_features(make_text_file_as_video(video_dir / "x.mp4"), TINY)


def test_missing_weights_name_the_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("C2F_CHECKPOINTS", str(tmp_path / "ckpt"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    from c2f.weights import resolve_weights

    with pytest.raises(MissingWeightsError) as exc:
        resolve_weights("s3d:KINETICS400_V1")
    assert "s3d-d76dad2f.pth" in str(exc.value) and str(tmp_path / "ckpt" / "s3d") in str(exc.value)
    with pytest.raises(MissingWeightsError) as exc:
        create_clip_encoder(get_preset("clip-only"), device="cpu")
    assert "open_clip_model.safetensors" in str(exc.value) and "clip" in str(exc.value)


def test_cli_extract_end_to_end(video_dir, tmp_path):
    make_video(video_dir / "a.mp4", seconds=2)
    make_video(video_dir / "b.mkv", seconds=3.2)
    make_text_file_as_video(video_dir / "broken.mp4")
    out = tmp_path / "feats"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "c2f",
            "extract",
            str(video_dir),
            "--out",
            str(out),
            "--preset",
            "tiny-clip-only",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr  # one bad file -> non-zero exit, the others still done
    assert "2 of 3 videos extracted" in proc.stdout and "broken.mp4" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["a.safetensors", "b.safetensors"]
    assert load_features(out / "b.safetensors").num_clips == 3

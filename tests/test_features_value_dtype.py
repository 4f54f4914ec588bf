"""The `value` extraction's CLIP stream is computed in VALUE's dtype (float32; bfloat16 only when
C2F_CPU_BF16=1), whatever setting the tuner chose for the encoder it shares with other presets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from videogen import make_video

from c2f import tuning
from c2f.device import forced_cpu_bf16
from c2f.encoders import create_clip_encoder
from c2f.encoders.registry import forget_encoders
from c2f.features import get_preset
from c2f.features.extract import extract_features
from c2f.features.value import encode_clip_raw

TINY_VALUE = get_preset("tiny-value")


@pytest.fixture
def fresh_encoders(tmp_path, monkeypatch):
    monkeypatch.setenv("C2F_TUNING_CACHE", str(tmp_path / "tuning.json"))
    monkeypatch.delenv("C2F_TUNE_CLIP_IMAGE", raising=False)
    tuning.forget()
    forget_encoders()
    yield
    forget_encoders()
    tuning.forget()


def test_value_clip_stream_does_not_depend_on_the_shared_encoders_tuning(tmp_path, monkeypatch, fresh_encoders):
    video = make_video(tmp_path / "v.mp4", seconds=4.0)
    before = extract_features(video, TINY_VALUE, device="cpu")  # the shared tower is untuned: float32
    clip_enc = create_clip_encoder(TINY_VALUE, "cpu")
    # another preset with the same CLIP tunes it to bfloat16 in this process (pinned here)
    monkeypatch.setenv("C2F_TUNE_CLIP_IMAGE", '{"dtype": "bfloat16"}')
    clip_enc.tune_images()
    assert next(clip_enc.model.visual.parameters()).dtype == torch.bfloat16  # left as tuned
    after = extract_features(video, TINY_VALUE, device="cpu")
    np.testing.assert_array_equal(after.features, before.features)
    assert next(clip_enc.model.visual.parameters()).dtype == torch.bfloat16

    frames = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    ours = encode_clip_raw(clip_enc, frames)
    with torch.inference_mode():  # what reading the tuned tower would give
        tuned = clip_enc.model.visual(clip_enc.preprocess(frames).to(torch.bfloat16)).float().half().float()
    if forced_cpu_bf16():  # C2F_CPU_BF16=1: bfloat16 is VALUE's dtype here too
        torch.testing.assert_close(ours, tuned, rtol=0, atol=0)
    else:  # float32 weights (loaded again: the tuned tower's were rounded), not the tuned bfloat16
        assert not torch.equal(ours, tuned)
        torch.testing.assert_close(ours, tuned, atol=0.1, rtol=0.1)  # the same network, rounded

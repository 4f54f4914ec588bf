"""The `value` extraction runs in VALUE's precision: CLIP in float32 on a CPU (bfloat16 only when
C2F_CPU_BF16=1), whatever setting the tuner chose for the encoder it shares with other presets, and
with float16 weights the OpenAI way on a GPU; S3D-G in float32; never under autocast or TF32."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from videogen import make_video

from c2f import tuning
from c2f.device import forced_cpu_bf16
from c2f.encoders import create_clip_encoder, create_s3d_encoder
from c2f.encoders.clip import ClipEncoder, _register_configs
from c2f.encoders.registry import forget_encoders
from c2f.features import get_preset
from c2f.features.extract import extract_features
from c2f.features.value import encode_clip_raw, openai_half, value_image_tower, value_tower_dtype

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


def test_value_clip_stream_does_not_depend_on_the_shared_encoders_tuning(
    tmp_path, monkeypatch, fresh_encoders
):
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


def test_value_path_never_runs_under_autocast_or_tf32(tmp_path, fresh_encoders):
    video = make_video(tmp_path / "v.mp4", seconds=4.0)
    plain = extract_features(video, TINY_VALUE, device="cpu")
    towers = [
        value_image_tower(create_clip_encoder(TINY_VALUE, "cpu")),
        create_s3d_encoder(TINY_VALUE, "cpu").model,
    ]
    # (module, cpu autocast on, cuda autocast on, TF32 allowed) in each forward
    seen: list[tuple[str, bool, bool, bool]] = []

    def record(module, args, output):
        tf32 = torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32
        seen.append(
            (type(module).__name__, torch.is_autocast_enabled("cpu"), torch.is_autocast_enabled("cuda"), tf32)
        )

    hooks = [m.register_forward_hook(record) for tower in towers for m in tower.modules()]
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True  # a caller's TF32
        with torch.autocast("cpu", dtype=torch.bfloat16):  # a caller's autocast: the value path turns it off
            assert torch.is_autocast_enabled("cpu")
            wrapped = extract_features(video, TINY_VALUE, device="cpu")
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32  # restored after
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
        for hook in hooks:
            hook.remove()
    ran = {name for name, *_ in seen}
    assert {"VisionTransformer", "Conv2d", "Linear", "S3DG", "Conv3d"} <= ran  # both streams were watched
    assert [entry for entry in seen if any(entry[1:])] == []
    np.testing.assert_array_equal(wrapped.features, plain.features)


def test_gpu_clip_weights_are_float16_as_openai_clip_load_leaves_them():
    import open_clip

    assert value_tower_dtype(torch.device("cuda")) == torch.float16
    assert value_tower_dtype(torch.device("cpu")) == (torch.bfloat16 if forced_cpu_bf16() else torch.float32)
    _register_configs()
    with torch.random.fork_rng(devices=[]):  # the encoder's seeded random weights
        torch.manual_seed(0)
        # open_clip's fp16 model = clip.load's on a GPU: convert_weights, layer norms in float32
        reference = open_clip.create_model(
            TINY_VALUE.clip_model, pretrained=None, precision="fp16"
        ).visual.eval()
    encoder = ClipEncoder(TINY_VALUE.clip_model, "random", "cpu")  # untuned: float32
    ours = openai_half(copy.deepcopy(encoder.model.visual))
    expected, got = reference.state_dict(), ours.state_dict()
    assert expected.keys() == got.keys()
    for name, tensor in expected.items():
        assert got[name].dtype == tensor.dtype and torch.equal(got[name], tensor), name
    assert (
        expected["conv1.weight"].dtype == torch.float16 and expected["ln_pre.weight"].dtype == torch.float32
    )
    frames = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    x = encoder.preprocess(frames).half()
    with torch.inference_mode():  # float16 arithmetic runs on a CPU too: the same operations
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)
    s3d = {p.dtype for p in create_s3d_encoder(TINY_VALUE, "cpu").model.parameters()}
    assert s3d == {torch.bfloat16 if forced_cpu_bf16() else torch.float32}

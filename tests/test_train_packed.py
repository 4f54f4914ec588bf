"""Training at scale: the memory-mapped pack equals the feature files, is cached by fingerprint,
long videos are windowed (never clamped) with counts, gradient accumulation and resume."""

from __future__ import annotations

import numpy as np
import torch

from c2f.data.dataset import text_token_encoder, video_input
from c2f.data.packed import PACK_DIR, pack_features, packed_query_tokens
from c2f.data.tvr import TVRQuery
from c2f.data.windows import choose_window, window_video
from c2f.features import ClipFeatures, Subtitle, VideoMeta, get_preset, load_features, save_features
from c2f.model import get_config
from c2f.model.c2f import VideoInput
from c2f.train import TrainSettings, train_model

SETTINGS = get_preset("tiny-clip-only")  # 64-d
WORDS = {"<s>": [0.5] * 8, "</s>": [-0.5] * 8, "door": [0.25, 1, 0, 0, 0, 0, 0, 2], "hi": [1.0] * 8}
SPEC = {"kind": "words", "vectors": WORDS}  # float16-exact vectors: the pack must give them back exactly


def make_feature_dir(folder, lengths, exact=True, seed=0):
    rng = np.random.default_rng(seed)
    for i, n in enumerate(lengths):
        x = rng.standard_normal((n, 64)).astype(np.float16 if exact else np.float32).astype(np.float32)
        times = np.stack([np.arange(n) * 1.5, np.arange(1, n + 1) * 1.5], 1)
        subs = [Subtitle(0.1, 2.9, "hi door"), Subtitle(4.6, 6.0, "door")] if i % 2 == 0 else []
        meta = VideoMeta(f"v{i}.mp4", f"h{i}", n * 1.5, 30.0, 64, 64)
        save_features(ClipFeatures(f"v{i}", x, times, [("clip", 64)], SETTINGS, meta, subs), folder / f"v{i}.safetensors")


def test_pack_equals_the_files_and_is_reused(tmp_path):
    make_feature_dir(tmp_path, [5, 3, 12])
    encode = text_token_encoder(SPEC)
    pack = pack_features(tmp_path, SETTINGS, encode, SPEC, progress=False)
    assert pack.clips.dtype == np.float16  # exact in float16: half the bytes
    for i, name in enumerate(pack.names):
        ref = video_input(load_features(tmp_path / f"{name}.safetensors"), encode)
        got = pack.video(i)
        np.testing.assert_array_equal(got.feats, ref.feats)
        assert len(got.segments) == len(ref.segments)
        for (c1, t1), (c2, t2) in zip(got.segments, ref.segments, strict=True):
            np.testing.assert_array_equal(c1, c2)
            assert (t1 is None) == (t2 is None)
            if t1 is not None:
                np.testing.assert_array_equal(t1, t2)
    again = pack_features(tmp_path, SETTINGS, encode, SPEC, progress=False)
    assert again.directory == pack.directory
    # a changed folder gives a new pack and the stale one goes
    make_feature_dir(tmp_path, [5, 3, 12], exact=False, seed=1)
    fresh = pack_features(tmp_path, SETTINGS, encode, SPEC, progress=False)
    assert fresh.directory != pack.directory and not pack.directory.exists()
    assert fresh.clips.dtype == np.float32  # not float16-exact: kept in float32
    np.testing.assert_array_equal(fresh.video(2).feats, load_features(tmp_path / "v2.safetensors").features)
    assert [p.name for p in (tmp_path / PACK_DIR).iterdir() if p.is_dir()] == [fresh.directory.name]


def test_query_tokens_are_cached(tmp_path):
    encode = text_token_encoder(SPEC)
    texts = ["hi door", "door", "unknown words here"]
    toks = packed_query_tokens(texts, encode, SPEC, tmp_path, progress=False)
    for got, ref in zip(toks, encode(texts), strict=True):
        np.testing.assert_array_equal(got, ref)
    assert len(list((tmp_path / PACK_DIR).glob("queries-*.bin"))) == 1


def test_choose_window():
    # short video: whole
    assert choose_window(8, [(2, 5)], 10) == (0, 8, [True])
    # the aligned inference window [10, 20) when it holds the span
    assert choose_window(35, [(12, 15)], 10) == (10, 10, [True])
    # across an aligned boundary: centred on the span
    assert choose_window(35, [(8, 12)], 10) == (6, 10, [True])  # 2 clips before, 3 after
    # tail: the last aligned window is shorter, as at inference
    assert choose_window(35, [(31, 33)], 10) == (30, 5, [True])
    # two queries whose moments do not fit together: the first that fits wins
    assert choose_window(60, [(0, 2), (50, 52)], 10) == (0, 10, [True, False])
    # a span longer than the window is never inside one
    assert choose_window(60, [(5, 30)], 10)[2] == [False]
    v = VideoInput(np.arange(12)[:, None].astype(np.float32), [(np.arange(0, 4), None), (np.arange(4, 12), None)])
    w = window_video(v, 3, 5)
    assert w.feats[:, 0].tolist() == [3, 4, 5, 6, 7]
    assert [c.tolist() for c, _ in w.segments] == [[0], [1, 2, 3, 4]]


def test_long_videos_are_windowed_and_counted_with_accumulation_and_resume(tmp_path):
    make_feature_dir(tmp_path / "f", [5, 3, 12])
    encode = text_token_encoder(SPEC)
    corpus = pack_features(tmp_path / "f", SETTINGS, encode, SPEC, progress=False).corpus()
    cfg = get_config("tiny", video_dim=64, token_dim=8, max_clips=4)
    queries = [
        TVRQuery(0, "hi door", "v0", 7.5, (0.0, 3.0)),  # clips 0-1 of 5: the aligned window [0, 4)
        TVRQuery(1, "door", "v2", 18.0, (13.6, 16.4)),  # clips 9-10 of 12: windowed, not clamped
        TVRQuery(2, "hi", "v2", 18.0, (0.0, 12.0)),  # 8 clips > max_clips: no localizer loss
        TVRQuery(3, "door hi", "v1", 4.5, (1.5, 4.5)),
    ]
    tokens = encode([q.desc for q in queries])
    settings = TrainSettings(steps=2, batch_size=2, grad_accum=2, eval_every=1, warmup=1, device="cpu")
    res = train_model(cfg, corpus, queries, tokens, [], [], settings, out_dir=tmp_path / "run", progress=False)
    assert res.data["queries_on_videos_longer_than_max_clips"] == 3
    assert res.data["spans_longer_than_max_clips_no_localizer_loss"] == 1
    assert res.data["end_past_features"] == 0
    # 2 steps x 2 micro-batches x 2 queries = every query twice: the long span skipped twice at least
    assert res.data["localizer_rows_skipped"] >= 2
    # resume from step 1 of the same run reproduces step 2 exactly (order, rng and optimizer restored)
    once = {k: v.clone() for k, v in res.model.state_dict().items()}
    half = TrainSettings(**{**settings.__dict__, "steps": 1})
    train_model(cfg, corpus, queries, tokens, [], [], half, out_dir=tmp_path / "r2", progress=False)
    resumed = train_model(
        cfg, corpus, queries, tokens, [], [], settings, out_dir=tmp_path / "r2", resume=True, progress=False
    )
    for k, v in resumed.model.state_dict().items():
        torch.testing.assert_close(v, once[k])

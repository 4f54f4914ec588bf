"""The clip index ranks videos exactly as brute-force max-pooling over all clips (paper Eq. 3)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from c2f.index import ClipIndex, brute_force_top_videos
from c2f.index.clip_index import IndexError_


def random_corpus(rng, videos, dim=32, correlated=True, max_clips=40):
    out = {}
    for v in range(videos):
        n = int(rng.integers(1, max_clips))
        if correlated:  # a random walk around a base vector, like consecutive clips of a video
            x = rng.normal(size=dim) + np.cumsum(rng.normal(size=(n, dim)) * 0.2, axis=0)
        else:
            x = rng.normal(size=(n, dim))
        out[int(rng.integers(0, 1 << 30)) if v % 2 else v] = (
            x / np.linalg.norm(x, axis=1, keepdims=True)
        ).astype(np.float32)
    return out


def assert_same(hits, ref):
    assert [h.video_key for h in hits] == [h.video_key for h in ref]
    np.testing.assert_allclose([h.score for h in hits], [h.score for h in ref], atol=1e-5)
    assert [h.best_clip for h in hits] == [h.best_clip for h in ref]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("correlated", [True, False])
def test_top_k_equals_brute_force(seed, correlated):
    rng = np.random.default_rng(seed)
    corpus = random_corpus(rng, 120, correlated=correlated)
    index = ClipIndex(32)
    index.add_many(corpus)
    queries = rng.normal(size=(6, 32)).astype(np.float32)
    for k in (1, 5, 10, 500):
        for q, hits in zip(queries, index.search_videos(queries, k), strict=True):
            assert_same(hits, brute_force_top_videos(corpus, q, k))


def test_single_clip_videos_and_exact_ties():
    index = ClipIndex(4)
    e = np.eye(4, dtype=np.float32)
    index.add(7, e[:1])
    index.add(3, e[:1])  # the same vector: a tie, broken by video key
    index.add(5, e[1:3])
    hits = index.search_videos(np.array([1, 0, 0, 0], np.float32), 3)[0]
    assert [(h.video_key, round(h.score, 6)) for h in hits] == [(3, 1.0), (7, 1.0), (5, 0.0)]


def test_add_remove_readd_and_replace():
    rng = np.random.default_rng(5)
    corpus = random_corpus(rng, 30)
    index = ClipIndex(32)
    index.add_many(corpus)
    key = next(iter(corpus))
    index.remove(key)
    assert key not in index and index.num_videos == 29
    q = rng.normal(size=32).astype(np.float32)
    rest = {k: v for k, v in corpus.items() if k != key}
    assert_same(index.search_videos(q, 10)[0], brute_force_top_videos(rest, q, 10))
    index.add(key, corpus[key])
    assert_same(index.search_videos(q, 10)[0], brute_force_top_videos(corpus, q, 10))
    index.add(key, corpus[key][:2])  # replacing a video keeps one copy
    assert index.num_clips == sum(len(v) for v in rest.values()) + 2
    np.testing.assert_allclose(
        index.clip_scores(q, key), corpus[key][:2] @ (q / np.linalg.norm(q)), atol=1e-6
    )


def test_save_load_round_trip_and_mismatch_detection(tmp_path):
    rng = np.random.default_rng(9)
    corpus = random_corpus(rng, 40)
    index = ClipIndex(32, fingerprint="abc")
    index.add_many(corpus)
    index.save(tmp_path)
    back = ClipIndex.load(tmp_path)
    assert back.fingerprint == "abc" and back.num_clips == index.num_clips
    q = rng.normal(size=(3, 32)).astype(np.float32)
    assert back.search_videos(q, 7) == index.search_videos(q, 7)
    side = json.loads((tmp_path / "clips.json").read_text())
    side["ntotal"] += 1
    (tmp_path / "clips.json").write_text(json.dumps(side))
    with pytest.raises(IndexError_, match="disagree"):
        ClipIndex.load(tmp_path)
    with pytest.raises(IndexError_, match="no index"):
        ClipIndex.load(tmp_path / "nothing")


def test_bad_inputs():
    index = ClipIndex(8)
    assert index.search_videos(np.ones(8), 5) == [[]]
    with pytest.raises(IndexError_, match="dimension 8"):
        index.add(1, np.ones((3, 9)))
    with pytest.raises(IndexError_, match="NaN"):
        index.add(1, np.full((2, 8), np.nan))
    with pytest.raises(IndexError_, match="not in the index"):
        index.remove(42)


def test_approximate_mode_recall_is_measured():
    rng = np.random.default_rng(3)
    corpus = random_corpus(rng, 300)
    index = ClipIndex(32, kind="approximate")
    index.add_many(corpus)
    queries = rng.normal(size=(20, 32)).astype(np.float32)
    recalls = []
    for q in queries:
        exact = {h.video_key for h in index.search_videos(q, 10, approximate=False)[0]}
        approx = {h.video_key for h in index.search_videos(q, 10, approximate=True)[0]}
        recalls.append(len(exact & approx) / 10)
    assert np.mean(recalls) >= 0.8, np.mean(recalls)

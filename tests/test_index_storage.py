"""Clip index beyond the basics: float16 storage, incremental updates, persistence checks,
approximate mode kept in step with updates, the auto rule, and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

import c2f.index.clip_index as clip_index_module
from c2f.index import ClipIndex, ClipIndexError, brute_force_top_videos, measure_recall


def shot_corpus(rng, videos, dim=32, max_clips=80):
    """Videos made of shots (tight runs of clips) around a per-video base: the case bounds prune."""
    out = {}
    for v in range(videos):
        n = int(rng.integers(1, max_clips))
        shot = np.cumsum(rng.random(n) < 0.15)
        centers = rng.normal(size=(shot[-1] + 1, dim)) * 0.5 + rng.normal(size=dim)
        x = centers[shot] + rng.normal(size=(n, dim)) * 0.05
        out[3 * v + 1] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def keys_scores(hits):
    return [h.video_key for h in hits], [h.score for h in hits], [h.best_clip for h in hits]


def assert_same(hits, ref):
    keys, scores, clips = keys_scores(hits)
    ref_keys, ref_scores, ref_clips = keys_scores(ref)
    assert keys == ref_keys
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    assert clips == ref_clips


@pytest.mark.parametrize("storage", ["float32", "float16"])
def test_exact_search_equals_brute_force_and_rarely_scans_everything(monkeypatch, storage):
    """The float16 scan + certificate gives the brute-force ranking of the stored vectors, and
    on shot-structured videos it almost never needs the full float32 scan."""
    full_scans = []
    original = ClipIndex._float32_maxima
    monkeypatch.setattr(
        ClipIndex,
        "_float32_maxima",
        lambda self, q, videos: full_scans.append(1) or original(self, q, videos),
    )
    rng = np.random.default_rng(4)
    corpus = shot_corpus(rng, 150)
    index = ClipIndex(32, storage=storage, scan="float16")
    index.add_many(corpus)
    keys, starts = index.storage_layout()
    stored = {
        int(key): index.vectors()[s : s + len(corpus[key])].astype(np.float32)
        for key, s in zip(keys, starts, strict=True)
    }
    queries = 0
    for q in rng.normal(size=(8, 32)).astype(np.float32):
        for k in (1, 10, 40):
            assert_same(index.search_videos(q, k)[0], brute_force_top_videos(stored, q, k, normalise=False))
            queries += 1
    assert index.scan_precision == "float16"
    assert len(full_scans) <= queries // 4


def test_full_scan_fallback_equals_brute_force(monkeypatch):
    monkeypatch.setattr(clip_index_module, "_SCAN_ROWS", 7)  # many small steps of the full scan
    monkeypatch.setattr(clip_index_module, "_RESCORE_FRACTION", 0.0)  # fall back unless certain
    rng = np.random.default_rng(5)
    corpus = shot_corpus(rng, 150)
    index = ClipIndex(32, scan="bfloat16")
    index.add_many(corpus)
    for q in rng.normal(size=(5, 32)).astype(np.float32):
        for k in (1, 10, 40):
            assert_same(index.search_videos(q, k)[0], brute_force_top_videos(corpus, q, k))


@pytest.mark.parametrize("scan", ["float16", "int8"])
def test_near_ties_beyond_the_scan_bound_are_ranked_exactly(scan):
    """Videos whose scores differ by less than the scan can tell apart are still ordered exactly."""
    rng = np.random.default_rng(6)
    base = rng.normal(size=64)
    corpus = {}
    for key in range(40):
        # scores ~1e-4 apart: far above float32 rounding, below what the float16 scan can separate
        x = base + rng.normal(size=(5, 64)) * 3e-3
        corpus[key] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    for key in range(40, 140):  # unrelated videos: the near ties are rescored, not fully scanned
        x = rng.normal(size=(5, 64))
        corpus[key] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    index = ClipIndex(64, scan=scan)
    index.add_many(corpus)
    for q in base + rng.normal(size=(3, 64)) * 0.5:
        q = (q / np.linalg.norm(q)).astype(np.float32)
        for k in (1, 3, 10):
            assert_same(index.search_videos(q, k)[0], brute_force_top_videos(corpus, q, k))


def test_one_by_one_updates_equal_a_fresh_build():
    rng = np.random.default_rng(2)
    corpus = shot_corpus(rng, 60)
    index = ClipIndex(32)
    for key, v in corpus.items():
        index.add(key, v)
    removed = list(corpus)[::4]
    for key in removed:
        index.remove(key)
    kept = {k: v for k, v in corpus.items() if k not in removed}
    fresh = ClipIndex(32)
    fresh.add_many(kept)
    assert index.num_clips == fresh.num_clips
    assert sorted(index.video_keys()) == sorted(kept)
    queries = rng.normal(size=(4, 32)).astype(np.float32)
    assert index.search_videos(queries, 12) == fresh.search_videos(queries, 12)
    for q in queries:
        assert_same(index.search_videos(q, 12)[0], brute_force_top_videos(kept, q, 12))


@pytest.mark.parametrize("storage", ["float32", "float16"])
def test_save_load_round_trip(tmp_path, storage):
    rng = np.random.default_rng(7)
    corpus = shot_corpus(rng, 30)
    index = ClipIndex(32, fingerprint="clip-b32", storage=storage, kind="exact")
    index.add_many(corpus)
    index.save(tmp_path)
    back = ClipIndex.load(tmp_path)
    assert (back.storage, back.kind, back.fingerprint) == (storage, "exact", "clip-b32")
    assert back.video_keys() == index.video_keys() and back.memory_bytes() == index.memory_bytes()
    q = rng.normal(size=(3, 32)).astype(np.float32)
    assert back.search_videos(q, 9) == index.search_videos(q, 9)
    key = index.video_keys()[3]
    np.testing.assert_array_equal(back.clip_scores(q[0], key), index.clip_scores(q[0], key))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.update(dim=s["dim"] + 1), "disagree"),
        (lambda s: s.update(storage="float16"), "does not hold float16"),
        (lambda s: s["videos"].update({"999": s["videos"].pop(next(iter(s["videos"])))}), "video table"),
        (lambda s: s.update(format=99), "format 99"),
    ],
)
def test_load_detects_a_sidecar_that_does_not_match(tmp_path, edit, message):
    index = ClipIndex(8)
    index.add_many({1: np.eye(8, dtype=np.float32)[:3], 2: np.ones((2, 8), np.float32)})
    index.save(tmp_path)
    side = json.loads((tmp_path / "clips.json").read_text())
    edit(side)
    (tmp_path / "clips.json").write_text(json.dumps(side))
    with pytest.raises(ClipIndexError, match=message):
        ClipIndex.load(tmp_path)


@pytest.mark.parametrize("shards", [1, 3])
def test_approximate_index_follows_adds_and_removes(monkeypatch, shards):
    """PQ codes in one or several row ranges stay aligned with the stored rows through updates."""
    monkeypatch.setattr(clip_index_module, "_SCAN_THREADS", shards)
    monkeypatch.setattr(clip_index_module, "_PARALLEL_MIN_ROWS", 0)
    rng = np.random.default_rng(11)
    corpus = shot_corpus(rng, 200)
    index = ClipIndex(32, kind="approximate")
    index.add_many(dict(list(corpus.items())[:150]))
    queries = rng.normal(size=(20, 32)).astype(np.float32)
    assert measure_recall(index, queries, 10) >= 0.9  # also builds the PQ codes
    later = dict(list(corpus.items())[150:])
    index.add_many(later)
    gone = list(corpus)[:50]
    for key in gone:
        index.remove(key)
    for key, v in list(later.items())[:10]:  # a clip of a newly added video is found first
        hit = index.search_videos(v[len(v) // 2], 1)[0][0]
        assert hit.video_key == key and hit.score == pytest.approx(1.0, abs=1e-5)
    found = {h.video_key for hits in index.search_videos(queries, 10) for h in hits}
    assert not found & set(gone)
    assert measure_recall(index, queries, 10) >= 0.9
    assert len(index._pq_shards) == shards and index._pq.ntotal == index.num_clips
    index.approx_proposals = index.approx_refined = index.num_clips  # every clip rescored: exact
    assert measure_recall(index, queries, 10) == 1.0


def test_auto_switches_to_approximate_at_the_documented_size(monkeypatch):
    monkeypatch.setattr(clip_index_module, "APPROX_MIN_VIDEOS", 5)
    index = ClipIndex(8)
    for key in range(4):
        index.add(key, np.random.default_rng(key).normal(size=(3, 8)))
    assert not index.use_approximate()
    index.add(4, np.ones((2, 8)))
    assert index.use_approximate()
    assert not ClipIndex(8, kind="exact").use_approximate()


def test_bad_inputs_get_clear_errors():
    index = ClipIndex(8)
    index.add(1, np.ones((2, 8)))
    with pytest.raises(ClipIndexError, match="dimension 8"):
        index.search_videos(np.ones(16), 3)  # two queries' worth of numbers is not a query
    with pytest.raises(ClipIndexError, match="all zeros"):
        index.search_videos(np.zeros(8), 3)
    with pytest.raises(ClipIndexError, match="NaN"):
        index.search_videos(np.full(8, np.inf), 3)
    with pytest.raises(ClipIndexError, match="at least 1"):
        index.search_videos(np.ones(8), 0)
    with pytest.raises(ClipIndexError, match="not in the index"):
        index.clip_scores(np.ones(8), 2)
    with pytest.raises(ClipIndexError, match="outside"):
        index.add(-1, np.ones((2, 8)))
    with pytest.raises(ClipIndexError, match="no clip vectors"):
        index.add(3, np.zeros((0, 8)))
    with pytest.raises(ClipIndexError, match="all zeros"):
        index.add(3, np.zeros((2, 8)))
    with pytest.raises(ClipIndexError, match="empty index"):
        measure_recall(ClipIndex(8), np.ones((1, 8)))
    with pytest.raises(ValueError, match="storage"):
        ClipIndex(8, storage="int8")
    assert index.num_videos == 1 and index.num_clips == 2  # failed adds changed nothing


@pytest.mark.parametrize("shards", [1, 2])
def test_approximate_index_saves_its_pq_codes(tmp_path, monkeypatch, shards):
    """Saving builds and writes the PQ codes, loading reads them back (no rebuild at the first
    query); a missing code file only means a rebuild on first use."""
    monkeypatch.setattr(clip_index_module, "_SCAN_THREADS", shards)
    monkeypatch.setattr(clip_index_module, "_PARALLEL_MIN_ROWS", 0)
    rng = np.random.default_rng(12)
    index = ClipIndex(32, kind="approximate", storage="float16")
    index.add_many(shot_corpus(rng, 120))
    index.save(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("clips.pq*.faiss")) == [
        f"clips.pq{i}.faiss" for i in range(shards)
    ]
    queries = rng.normal(size=(6, 32)).astype(np.float32)
    before = index.search_videos(queries, 10)

    def no_rebuild(self):
        raise AssertionError("PQ codes rebuilt although they were saved")

    with monkeypatch.context() as m:
        m.setattr(ClipIndex, "_build_pq", no_rebuild)
        back = ClipIndex.load(tmp_path)
        assert back.search_videos(queries, 10) == before
        assert back.memory_bytes() == index.memory_bytes()
    (tmp_path / "clips.pq0.faiss").unlink()
    again = ClipIndex.load(tmp_path)
    assert again._pq is None and again.search_videos(queries, 10) == before

"""The Milvus vector store (Milvus Lite, a local file): the same top-k videos as the exact faiss index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from vectorstore_checks import assert_same_hits, check_library_searches_like_faiss

from c2f.errors import C2FError
from c2f.index import ClipIndex
from c2f.library.lease import writer_lease

pytest.importorskip("pymilvus", reason="the Milvus extra is not installed (pip install -r requirements-milvus.txt)")
pytest.importorskip("milvus_lite")

from c2f.index.milvus_store import CLIP_BITS, MilvusClipIndex, client_uri


def _videos(rng, n_videos, dim):
    out = {}
    for key in range(n_videos):
        v = rng.standard_normal((int(rng.integers(1, 40)), dim)).astype(np.float32)
        out[key * 7 + 3] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def test_top_k_videos_equal_the_exact_faiss_search(tmp_path):
    rng = np.random.default_rng(0)
    data = _videos(rng, 150, 32)
    exact = ClipIndex(32, "fp", kind="exact")
    exact.add_many(data)
    store = MilvusClipIndex(str(tmp_path / "v.db"), 32, "fp")
    store.open_for_writing(writer_lease(tmp_path / "write.lock"))
    store.add_many(data)
    assert store.num_videos == 150 and store.num_clips == exact.num_clips
    queries = rng.standard_normal((12, 32)).astype(np.float32)
    got, want = store.search_videos(queries, 10), exact.search_videos(queries, 10)
    for g, w in zip(got, want, strict=True):
        assert [h.video_key for h in g] == [h.video_key for h in w]
        assert [h.best_clip for h in g] == [h.best_clip for h in w]
        np.testing.assert_allclose([h.score for h in g], [h.score for h in w], atol=1e-5)
    key = want[0][0].video_key
    np.testing.assert_allclose(store.clip_scores(queries[0], key), exact.clip_scores(queries[0], key), atol=1e-5)
    # removal, and a saved version read back (a pointer to the same collection)
    store.remove(key)
    exact.remove(key)
    assert key not in store and [h.video_key for h in store.search_videos(queries[0], 5)[0]] == [
        h.video_key for h in exact.search_videos(queries[0], 5)[0]
    ]
    store.save(tmp_path / "v1")
    again = MilvusClipIndex.load(tmp_path / "v1")
    assert again.video_keys() == exact.video_keys()
    again.open_for_writing(writer_lease(tmp_path / "write.lock"))
    with pytest.raises(C2FError, match="already in the index"):
        again.add(10, data[10])


def test_store_uris():
    assert client_uri("milvus://", Path("/lib")) == str(Path("/lib") / "indexes" / "milvus.db")
    assert client_uri("milvus://db.example:19530") == "http://db.example:19530"
    with pytest.raises(C2FError, match="milvus://"):
        client_uri("qdrant://x")
    with pytest.raises(C2FError, match=r"\.db or HOST:PORT"):
        client_uri("milvus://no/suffix")


def test_library_on_milvus_searches_like_faiss(tmp_path):
    check_library_searches_like_faiss(tmp_path, "milvus://", "milvus/indexes/milvus.db", atol=1e-5)


def test_top_k_past_pending_and_removed_videos_and_ties_equal_faiss(tmp_path):
    """The k listed videos are found however many unlisted ones score above them (pending: a writer
    busy with them; removed: gone from the reader's catalog snapshot), with faiss's float64 scores
    and its tie rule (equal scores by video key)."""
    rng = np.random.default_rng(2)
    data = _videos(rng, 60, 16)
    keys = sorted(data)
    for key in keys[1:6]:  # six videos with the same vectors: exact ties
        data[key] = data[keys[0]].copy()
    store = MilvusClipIndex(str(tmp_path / "v.db"), 16, "fp")
    store.open_for_writing(writer_lease(tmp_path / "write.lock"))
    store.add_many(data)
    store.save(tmp_path / "v1")
    queries = np.concatenate([data[keys[0]][:1], rng.standard_normal((8, 16))]).astype(np.float32)
    everything = ClipIndex(16, "fp", kind="exact")
    everything.add_many(data)
    top = [h.video_key for h in everything.search_videos(queries[1], 10)[0]]
    pending, removed = {top[1], top[3]}, {top[0], top[5]}
    store._pending = pending  # a writer at work on them (their vectors are all in)
    store._mark_pending()
    reader = MilvusClipIndex.load(tmp_path / "v1")
    reader.show_only([k for k in keys if k not in removed], lambda missing: {})
    exact = ClipIndex(16, "fp", kind="exact")
    exact.add_many({k: v for k, v in data.items() if k not in pending | removed})
    assert_same_hits(reader.search_videos(queries, 10), exact.search_videos(queries, 10))
    tied = reader.search_videos(queries[0], 4)[0]
    assert [(h.video_key, h.best_clip) for h in tied] == [(k, 0) for k in keys[:4]]
    assert len({h.score for h in tied}) == 1


def test_top_k_when_a_few_long_videos_hold_all_the_best_clips(tmp_path):
    """Milvus Lite groups only its best 10 * limit clips: when a few long videos hold all of them,
    it answers fewer videos than asked, which the search must not take for the end of the store."""
    rng = np.random.default_rng(5)
    target = rng.standard_normal(16).astype(np.float32)
    long = target + 0.05 * rng.standard_normal((4, 200, 16)).astype(np.float32)  # 4 x 200 near clips
    data = {1000 + i: v / np.linalg.norm(v, axis=1, keepdims=True) for i, v in enumerate(long)}
    data.update(_videos(rng, 36, 16))
    store = MilvusClipIndex(str(tmp_path / "v.db"), 16, "fp")
    store.open_for_writing(writer_lease(tmp_path / "write.lock"))
    store.add_many(data)
    exact = ClipIndex(16, "fp", kind="exact")
    exact.add_many(data)
    queries = np.concatenate([target[None], rng.standard_normal((3, 16))]).astype(np.float32)
    assert len(store._nearest(target / np.linalg.norm(target), 18)) == 4  # 18 asked (k + 8), 4 given
    assert_same_hits(store.search_videos(queries, 10), exact.search_videos(queries, 10))


def test_a_video_listed_without_all_its_vectors_is_an_error(tmp_path):
    """A video listed complete with a vector missing is a damaged store (the writer settles a
    removal's pending row before deleting vectors): one line says so, no partial video is scored."""
    rng = np.random.default_rng(6)
    data = _videos(rng, 5, 8)
    store = MilvusClipIndex(str(tmp_path / "v.db"), 8, "fp")
    store.open_for_writing(writer_lease(tmp_path / "write.lock"))
    store.add_many(data)
    key = sorted(data)[2]
    store._client.delete(store.collection, ids=[key << CLIP_BITS])  # its first clip, behind the listing
    reader = MilvusClipIndex(str(tmp_path / "v.db"), 8, "fp")
    with pytest.raises(C2FError, match=f"video {key} is listed complete in the store .* not all there"):
        reader.search_videos(data[key][-1:], 5)

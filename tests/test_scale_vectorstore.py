"""The Milvus vector store (Milvus Lite, a local file): the same top-k videos as the exact faiss index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from vectorstore_checks import check_library_searches_like_faiss

from c2f.errors import C2FError
from c2f.index import ClipIndex
from c2f.library.lease import writer_lease

pytest.importorskip("pymilvus", reason="the Milvus extra is not installed (pip install -r requirements-milvus.txt)")
pytest.importorskip("milvus_lite")

from c2f.index.milvus_store import MilvusClipIndex, client_uri


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

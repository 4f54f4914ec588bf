"""The Qdrant vector store (embedded qdrant-edge, and qdrant-client's local mode, whose calls are the
ones that reach a cluster): the same top-k videos, best clips and scores as the exact faiss index."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from vectorstore_checks import check_library_searches_like_faiss

from c2f.errors import C2FError
from c2f.index import ClipIndex
from c2f.library.lease import writer_lease

pytest.importorskip(
    "qdrant_edge", reason="the Qdrant extra is not installed (pip install -r requirements-qdrant.txt)"
)
pytest.importorskip("qdrant_client")

from c2f.index import qdrant_store
from c2f.index.qdrant_store import QdrantClipIndex, client_uri

SCHEMES = ["qdrant://", "qdrant-local://"]  # qdrant-edge; qdrant-client (local mode)


def _videos(rng, n_videos, dim, longest=40):
    out = {}
    for key in range(n_videos):
        v = rng.standard_normal((int(rng.integers(1, longest)), dim)).astype(np.float32)
        out[key * 7 + 3] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def _same_hits(got, want):
    for g, w in zip(got, want, strict=True):
        assert [(h.video_key, h.best_clip) for h in g] == [(h.video_key, h.best_clip) for h in w]
        np.testing.assert_allclose([h.score for h in g], [h.score for h in w], rtol=0, atol=1e-9)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_top_k_videos_equal_the_exact_faiss_search(tmp_path, monkeypatch, scheme):
    monkeypatch.setattr(qdrant_store, "PART_CLIPS", 16)  # videos of 16-39 clips span 2-3 points
    rng = np.random.default_rng(0)
    data = _videos(rng, 50, 32)  # few: the client's local mode commits each point to sqlite
    data[4] = np.repeat(data[10][:1], 3, axis=0)  # an exact tie with video 10: ordered by key, first clip
    exact = ClipIndex(32, "fp", kind="exact")
    exact.add_many(data)
    store = QdrantClipIndex(client_uri(scheme + str(tmp_path / "q")), 32, "fp")
    store.open_for_writing(writer_lease(tmp_path / "write.lock"))
    store.add_many(data)
    assert store.num_videos == 51 and store.num_clips == exact.num_clips
    queries = np.concatenate([rng.standard_normal((10, 32)), data[10][:1]]).astype(np.float32)
    _same_hits(store.search_videos(queries, 10), exact.search_videos(queries, 10))
    assert [h.video_key for h in store.search_videos(queries[-1], 2)[0]] == [4, 10]
    _same_hits(store.search_videos(queries[:2], 500), exact.search_videos(queries[:2], 500))  # k > videos
    key = exact.search_videos(queries[0], 1)[0][0].video_key
    np.testing.assert_allclose(
        store.clip_scores(queries[0], key), exact.clip_scores(queries[0], key), atol=1e-6
    )
    # removal, and a saved version read back (a pointer to the same collections)
    store.remove(key)
    exact.remove(key)
    assert key not in store
    _same_hits(store.search_videos(queries, 5), exact.search_videos(queries, 5))
    store.save(tmp_path / "v1")
    again = QdrantClipIndex.load(tmp_path / "v1")
    assert again.video_keys() == sorted(exact.video_keys()) and again.num_clips == exact.num_clips
    _same_hits(again.search_videos(queries, 5), exact.search_videos(queries, 5))
    present = again.video_keys()[0]
    with pytest.raises(C2FError, match="opened for reading"):
        again.add(10**6, data[present])
    again.open_for_writing(writer_lease(tmp_path / "write.lock"))
    with pytest.raises(C2FError, match="already in the index"):
        again.add(present, data[present])
    with pytest.raises(C2FError, match="not in the index"):
        again.clip_scores(queries[0], key)


def test_store_uris(tmp_path):
    assert client_uri("qdrant://", Path("/lib")) == "qdrant://" + str(Path("/lib/indexes/qdrant").resolve())
    assert client_uri("qdrant://db.example:6333") == "http://db.example:6333"
    assert client_uri(f"qdrant://{tmp_path}/x") == f"qdrant://{tmp_path}/x"
    assert client_uri(f"qdrant-local://{tmp_path}") == f"qdrant-local://{tmp_path}"
    with pytest.raises(C2FError, match=r"'milvus://x'.*qdrant://"):
        client_uri("milvus://x")
    with pytest.raises(C2FError, match="qdrant-local:// takes a folder"):
        client_uri("qdrant-local://db.example:6333")
    with pytest.raises(C2FError, match="names no folder"):
        client_uri("qdrant://")


@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
def test_clear_errors_name_the_store(tmp_path, monkeypatch):
    with pytest.raises(C2FError, match=r"cannot open the Qdrant store http://127\.0\.0\.1:9"):
        QdrantClipIndex("http://127.0.0.1:9", 8, "fp")  # nothing listens on port 9
    # a second process cannot open an embedded folder: told to use a server
    folder = tmp_path / "busy"
    busy = QdrantClipIndex(f"qdrant://{folder}", 8, "fp")
    busy.open_for_writing(writer_lease(tmp_path / "write.lock"))
    busy.add(1, np.ones((2, 8), np.float32))
    code = (
        f"from c2f.index.qdrant_store import QdrantClipIndex\nQdrantClipIndex('qdrant://{folder}', 8, 'fp')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert f"the Qdrant store {folder} is open in another process" in done.stderr
    assert "qdrant://HOST:PORT" in done.stderr
    (tmp_path / "v9").mkdir()
    (tmp_path / "v9" / "store.json").write_text('{"store": "qdrant"}')  # a damaged saved version
    with pytest.raises(C2FError, match=r"v9/store\.json: not a readable vector store pointer"):
        QdrantClipIndex.load(tmp_path / "v9")
    # without the package: the pip command
    monkeypatch.setitem(sys.modules, "qdrant_edge", None)
    with pytest.raises(C2FError, match=r"pip install 'c2f\[qdrant\]'"):
        QdrantClipIndex(f"qdrant://{tmp_path / 'other'}", 8, "fp")


def test_library_on_qdrant_searches_like_faiss(tmp_path):
    from c2f.library import Library

    check_library_searches_like_faiss(tmp_path, "qdrant://", "qdrant/indexes/qdrant", atol=1e-6)
    assert (tmp_path / "qdrant" / "indexes" / "qdrant").is_dir()
    with pytest.raises(C2FError, match="'lancedb://x': give faiss, qdrant://"):
        Library(tmp_path / "bad", vector_store="lancedb://x")

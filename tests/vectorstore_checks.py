"""What every vector store must do inside a Library: the checks tests/test_scale_vectorstore.py
(Milvus) and tests/test_vectorstore_qdrant.py (Qdrant) share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from videogen import make_video

from c2f.errors import LibraryError
from c2f.library import Library


def check_library_searches_like_faiss(tmp_path: Path, store: str, stored_at: str, atol: float) -> None:
    """A library on `store` (folder `tmp_path/<stored_at's first part>`) finds what a faiss library
    finds, forgets a removed video after reopening, and refuses another store setting."""
    videos = [
        make_video(tmp_path / "v" / "red.mp4", segments=[("red", 2.0), ("green", 1.5)]),
        make_video(tmp_path / "v" / "blue.mp4", segments=[("blue", 3.0)]),
        make_video(tmp_path / "v" / "pattern.mp4", seconds=4.0),
    ]
    root = tmp_path / Path(stored_at).parts[0]
    faiss_lib = Library(tmp_path / "faiss", settings="tiny-clip-only")
    store_lib = Library(root, settings="tiny-clip-only", vector_store=store)
    faiss_lib.add(videos)
    store_lib.add(videos)
    assert (tmp_path / stored_at).exists()
    for query in ["a red door", "blue sky", "moving pattern"]:
        a = faiss_lib.search(query, backend="tiny", top_k_videos=3)
        b = store_lib.search(query, backend="tiny", top_k_videos=3)
        assert [v.video_id for v in b.videos] == [v.video_id for v in a.videos]
        np.testing.assert_allclose([v.video_score for v in b.videos], [v.video_score for v in a.videos], atol=atol)
    removed = store_lib.list()[0].video_id
    store_lib.remove(removed)
    reopened = Library(root)
    assert reopened.vector_store == store
    assert removed not in {v.video_id for v in reopened.search("red", backend="tiny", top_k_videos=3).videos}
    with pytest.raises(LibraryError, match=f"keeps its vectors in {store}"):
        Library(root, vector_store="faiss")

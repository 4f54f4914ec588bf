"""A store shared by a writer and searching readers (c2f/index/external_store.py), on Qdrant
(qdrant-client's local mode, qdrant-edge) and Milvus Lite: only the writer holding the library's
write lock changes the store, it cleans only what its own lock or an expired lease left pending,
readers write nothing, and a writer killed mid-insert leaves nothing that a reader finds or the
next writer does not clean. The long runs: a writer adds 200 videos while 4 readers search and
reopen the library in a loop; every search equals the exact faiss search of the same catalog
snapshot, and every video ends complete in the store."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from vectorstore_checks import (
    PictureExtractor,
    assert_same_hits,
    check_searches,
    check_store_holds_the_catalog,
    make_videos,
    saved_store,
    search_loop,
    writer_and_readers,
    writer_process,
)

from c2f.errors import C2FError
from c2f.index import ClipIndex
from c2f.index import external_store as ext
from c2f.library import Library
from c2f.library.lease import WriterLease, writer_lease

N_VIDEOS, READERS = 200, 4
STORES = ["qdrant-local", "qdrant-edge", "milvus-lite"]


def _store(kind: str, folder: Path, dim: int) -> ext.ExternalIndex:
    """A store of `kind` in `folder`, opened for reading."""
    if kind == "milvus-lite":
        pytest.importorskip("milvus_lite")
        from c2f.index.milvus_store import MilvusClipIndex

        return MilvusClipIndex(str(folder / "m.db"), dim, "fp")
    pytest.importorskip("qdrant_edge" if kind == "qdrant-edge" else "qdrant_client")
    from c2f.index.qdrant_store import QdrantClipIndex

    scheme = "qdrant://" if kind == "qdrant-edge" else "qdrant-local://"
    return QdrantClipIndex(scheme + str(folder / "q"), dim, "fp")


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _interrupted_add(
    store: ext.ExternalIndex, key: int, vectors: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """add_many of one video stopped by an error after its first request: its row pending, some vectors in."""
    from c2f.index import milvus_store, qdrant_store

    def crash() -> None:
        raise RuntimeError("killed")

    with monkeypatch.context() as m:  # a request per clip, the first one's renewal fails
        m.setattr(qdrant_store, "PART_CLIPS", 1)
        m.setattr(qdrant_store, "_REQUEST_CLIPS", 1)
        m.setattr(milvus_store, "_PAGE", 1)
        m.setattr(store, "_keep_lease", crash)
        with pytest.raises(RuntimeError, match="killed"):
            store.add(key, vectors)


@pytest.mark.parametrize("kind", STORES)
def test_only_the_writer_cleans_pending_rows_its_lock_or_an_expired_lease_left(tmp_path, monkeypatch, kind):
    rng = np.random.default_rng(0)
    data = {k: _unit(rng, 3, 8) for k in (1, 2, 3)}
    ours, theirs = WriterLease("host:/lib/write.lock", "a"), WriterLease("host:/other/write.lock", "b")
    store = _store(kind, tmp_path, 8)
    with pytest.raises(C2FError, match="opened for reading"):
        store.add(1, data[1])
    store.open_for_writing(ours)
    store.add_many(data)
    # a writer of this library stopped mid-insert (video 7), one of another library mid-insert (8),
    # and another library's writer that died long ago (9)
    _interrupted_add(store, 7, _unit(rng, 4, 8), monkeypatch)
    other = _store(kind, tmp_path, 8)
    other.open_for_writing(theirs)
    _interrupted_add(other, 8, _unit(rng, 4, 8), monkeypatch)
    _interrupted_add(other, 9, _unit(rng, 4, 8), monkeypatch)
    other._put_listing({9: ext.Listing(-1, "b", theirs.lock, time.time() - ext.LEASE_EXPIRY_S - 1)})
    left = {7, 8, 9}
    assert {k for k, row in store._scan_listing() if not row.complete} == left
    assert {k for k, _ in store._nearest(data[1][0], 100)} == {1, 2, 3} | left  # their vectors are in
    # a reader lists only complete videos, never finds the pending ones, and deletes nothing
    reader = _store(kind, tmp_path, 8)
    assert reader.video_keys() == [1, 2, 3]
    for key in left:
        q = store._fetch_vectors({key: 1})[key][0]
        assert key not in [h.video_key for h in reader.search_videos(q, 3)[0]]
    reader.show_only([1, 2], lambda keys: {})
    assert reader.video_keys() == [1, 2]
    assert {k for k, row in store._scan_listing() if not row.complete} == left
    # the next writer of this library cleans its lock's row (its writer is gone) and the expired one
    again = _store(kind, tmp_path, 8)
    again.open_for_writing(WriterLease(ours.lock, "c"))
    assert {k for k, row in again._scan_listing() if not row.complete} == {8}
    assert {k for k, _ in again._nearest(data[1][0], 100)} == {1, 2, 3, 8}
    with pytest.raises(C2FError, match=r"video 8 is in the store .* already, written by b"):
        again.add(8, data[1])
    again.add(7, data[2])  # added again, whole
    assert again.video_keys() == [1, 2, 3, 7]


@pytest.mark.parametrize("kind", ["qdrant-local", "milvus-lite"])
def test_a_writer_renews_its_lease_while_it_writes(tmp_path, monkeypatch, kind):
    from c2f.index import milvus_store, qdrant_store

    monkeypatch.setattr(ext, "LEASE_RENEW_S", 0.0)
    monkeypatch.setattr(qdrant_store, "PART_CLIPS", 1)
    monkeypatch.setattr(qdrant_store, "_REQUEST_CLIPS", 1)
    monkeypatch.setattr(milvus_store, "_PAGE", 1)
    store = _store(kind, tmp_path, 8)
    store.open_for_writing(writer_lease(tmp_path / "write.lock"))
    renewals: list[float] = []
    put = store._put_listing

    def put_listing(rows: dict[int, ext.Listing]) -> None:
        renewals.extend(row.renewed for row in rows.values() if not row.complete)
        put(rows)

    monkeypatch.setattr(store, "_put_listing", put_listing)
    store.add(5, _unit(np.random.default_rng(1), 6, 8))  # 6 requests
    assert len(renewals) >= 6 and renewals == sorted(renewals)


@pytest.mark.parametrize("kind", ["qdrant-local", "milvus-lite"])
def test_a_reader_drops_a_video_the_writer_removed_after_it_read_the_listing(tmp_path, kind):
    """Its vectors gone, searches leave it out (the scan does not find it, or the fetch finds it
    pending or unlisted: settled before they were deleted), and its clip scores are refused."""
    rng = np.random.default_rng(6)
    data = {k: _unit(rng, 3, 8) for k in range(1, 6)}
    writer = _store(kind, tmp_path, 8)
    writer.open_for_writing(WriterLease("host:/lib/write.lock", "w"))
    writer.add_many(data)
    reader, other = _store(kind, tmp_path, 8), _store(kind, tmp_path, 8)
    writer.remove(3)
    exact = ClipIndex(8, "fp", kind="exact")
    exact.add_many({k: v for k, v in data.items() if k != 3})
    q = data[3][:1]  # video 3's first clip: it would be first
    assert_same_hits(reader.search_videos(q, 5), exact.search_videos(q, 5))
    with pytest.raises(C2FError, match="video 3 was removed from the store"):
        other.clip_scores(q[0], 3)


def test_milvus_lite_readers_search_exactly_while_it_flushes(tmp_path, monkeypatch):
    """Milvus Lite (3.2) hides the rows of the memtable a flush swaps out until their segment is in
    (a read in between misses them). Its writer flushes a video's vectors before it lists the
    video, so a reader searching during a later flush (held open here) still finds every one."""
    pytest.importorskip("milvus_lite")
    import milvus_lite.engine.collection as engine
    from milvus_lite.adapter.grpc.server import start_server_in_thread

    from c2f.index.milvus_store import MilvusClipIndex

    hold, in_flush, release = threading.Event(), threading.Event(), threading.Event()

    class HeldWAL(engine.WAL):  # made by a flush after its memtable swap, before its new segment
        def __init__(self, *args: object, **kwargs: Any) -> None:
            if hold.is_set() and Path(kwargs["wal_dir"]).parent.name == "c2f_fp":  # the vectors'
                hold.clear()
                in_flush.set()
                release.wait(60)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(engine, "WAL", HeldWAL)
    server, db, port = start_server_in_thread(str(tmp_path / "m.db"))
    try:
        rng = np.random.default_rng(7)
        data = {k: _unit(rng, 3, 8) for k in range(1, 7)}
        writer = MilvusClipIndex(f"http://127.0.0.1:{port}", 8, "fp")
        writer.open_for_writing(WriterLease("host:/lib/write.lock", "w"))
        writer.add_many({k: data[k] for k in (1, 2, 3)})
        writer.save(tmp_path / "v1")  # a flush: these in a segment whatever the writer does
        writer.add_many({k: data[k] for k in (4, 5, 6)})
        _interrupted_add(writer, 7, _unit(rng, 4, 8), monkeypatch)  # a vector in the memtable
        reader = MilvusClipIndex(f"http://127.0.0.1:{port}", 8, "fp")
        hold.set()
        flush = threading.Thread(target=writer._flush)
        flush.start()
        try:
            assert in_flush.wait(60)
            queries = np.concatenate([v[:1] for v in data.values()])
            got = reader.search_videos(queries, 3)
        finally:
            release.set()
            flush.join(60)
        exact = ClipIndex(8, "fp", kind="exact")
        exact.add_many(data)
        assert_same_hits(got, exact.search_videos(queries, 3))
    finally:
        server.stop(0)
        db.close()


def test_a_second_process_gets_a_clear_error_from_a_folder_store(tmp_path):
    """qdrant-local:// (qdrant-client's local mode) and Milvus Lite lock their folder to one process
    (qdrant-edge too: tests/test_vectorstore_qdrant.py); a server shares a store between processes."""
    pytest.importorskip("qdrant_client")
    pytest.importorskip("milvus_lite")
    held = [_store("qdrant-local", tmp_path, 8), _store("milvus-lite", tmp_path, 8)]
    code = (
        "import sys\nfrom c2f.index.qdrant_store import QdrantClipIndex\nfrom c2f.index.milvus_store import MilvusClipIndex\n"
        "for open_ in (lambda: QdrantClipIndex(sys.argv[1], 8, 'fp'), lambda: MilvusClipIndex(sys.argv[2], 8, 'fp')):\n"
        "    try:\n        open_()\n    except Exception as exc:\n        print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, held[0].uri, held[1].uri], capture_output=True, text=True, timeout=300
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"the Qdrant store {tmp_path / 'q'} is open in another process"), (
        done.stdout + done.stderr
    )
    assert "qdrant://HOST:PORT" in lines[0]
    assert lines[1].startswith(f"the Milvus Lite store {tmp_path / 'm.db'} is open in another process"), (
        done.stdout
    )
    assert "milvus-lite server --data-dir" in lines[1]


@contextlib.contextmanager
def milvus_lite_server(data_dir: Path) -> Iterator[str]:
    """Milvus Lite's own server on a free loopback port (the way several processes share a Milvus
    Lite folder): yields the library's store setting, milvus://127.0.0.1:PORT."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [
        "-m",
        "milvus_lite",
        "server",
        "--data-dir",
        str(data_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    server = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read()  # type: ignore[union-attr]
                time.sleep(0.2)
        yield f"milvus://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


# The crash point of a killed writer that adds each video to the store as it is indexed (saves
# after each one): SIGKILL after the first request of its 21st video
KILL_AT_21ST_VIDEO = (
    "import os, signal\nimport c2f.index.external_store as ext, c2f.index.qdrant_store as q, c2f.index.milvus_store as m\n"
    "q._REQUEST_CLIPS = m._PAGE = 1  # a request per video part (Qdrant), per clip (Milvus)\n"
    "def keep_lease(self):\n"
    "    if len(self._stored) == 20:\n"
    "        os.kill(os.getpid(), signal.SIGKILL)\n"
    "ext.ExternalIndex._keep_lease = keep_lease\n"
)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["qdrant-local", "milvus-lite"])
def test_a_killed_writers_leftovers_are_found_by_no_reader_and_cleaned_by_the_next_writer(tmp_path, kind):
    pytest.importorskip("milvus_lite" if kind == "milvus-lite" else "qdrant_client")
    store = f"milvus://{tmp_path / 'm.db'}" if kind == "milvus-lite" else f"qdrant-local://{tmp_path / 'q'}"
    videos, picture_of = make_videos(tmp_path / "videos", 30)
    root = tmp_path / "lib"
    Library(root, settings="tiny-clip-only", vector_store=store)
    writer = writer_process(tmp_path, root, videos, picture_of, before=KILL_AT_21ST_VIDEO, save_every_s=0)
    writer.communicate(timeout=600)
    assert writer.returncode == -signal.SIGKILL
    lib = Library(root)
    killed = [r.key for r in lib.catalog.all("indexed")][20]  # in the catalog, half in the store
    rows = dict(saved_store(root)._scan_listing())
    assert (
        len(rows) == 21
        and not rows[killed].complete
        and all(r.complete for k, r in rows.items() if k != killed)
    )
    # a reader searches the catalog's snapshot exactly (the half-stored video from its feature file)
    # and leaves the store as it found it
    done = tmp_path / "done"
    done.touch()
    search_loop(root, done, tmp_path / "reader.jsonl", seed=0)
    figures = check_searches(root, [tmp_path / "reader.jsonl"])
    assert figures["mismatches"] == 0 and figures["largest_snapshot"] == 21, figures
    assert dict(saved_store(root)._scan_listing()) == rows
    # the next writer cleans the row its lock left, stores that video whole, and adds the rest
    report = Library(root).add(videos, copy=False, extractor=PictureExtractor(picture_of))
    assert len(report.added) == 9 and not report.failed
    check_store_holds_the_catalog(root)


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["qdrant-local://", "qdrant://"])
def test_qdrant_writer_and_reader_threads(tmp_path, monkeypatch, scheme):
    """A Qdrant folder (qdrant-client's local mode, qdrant-edge) serves one process: its threads
    share it (the app indexing uploads while it searches)."""
    pytest.importorskip("qdrant_client" if scheme == "qdrant-local://" else "qdrant_edge")
    store = f"{scheme}{tmp_path / 'q'}"
    figures = writer_and_readers(tmp_path, store, N_VIDEOS, READERS, processes=False, monkeypatch=monkeypatch)
    print(f"{scheme}, threads:", figures)
    assert figures["mismatches"] == 0, figures
    assert figures["smallest_snapshot"] < N_VIDEOS == figures["largest_snapshot"]
    check_store_holds_the_catalog(tmp_path / "lib")


@pytest.mark.slow
def test_milvus_lite_server_writer_and_reader_processes(tmp_path, monkeypatch):
    pytest.importorskip("milvus_lite")
    with milvus_lite_server(tmp_path / "milvus.db") as store:
        figures = writer_and_readers(
            tmp_path, store, N_VIDEOS, READERS, processes=True, monkeypatch=monkeypatch
        )
        print("milvus-lite server, processes:", figures)
        assert figures["mismatches"] == 0, figures
        assert figures["smallest_snapshot"] < N_VIDEOS == figures["largest_snapshot"]
        check_store_holds_the_catalog(tmp_path / "lib")

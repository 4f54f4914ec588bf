"""What every vector store must do inside a Library: the checks tests/test_scale_vectorstore.py
(Milvus), tests/test_vectorstore_qdrant.py (Qdrant) and tests/test_vectorstore_shared.py (a writer
and searching readers at once) share."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from videogen import make_video

from c2f.errors import LibraryError
from c2f.library import Library

if TYPE_CHECKING:
    from c2f.features import ClipFeatures, FeatureSettings
    from c2f.features.parallel import JobResult, VideoJob
    from c2f.index import VideoHit
    from c2f.index.external_store import ExternalIndex

TESTS = Path(__file__).parent
K = 25  # videos per search: with 20 copies of each picture, the top 25 crosses a tie group


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
        np.testing.assert_allclose(
            [v.video_score for v in b.videos], [v.video_score for v in a.videos], atol=atol
        )
    removed = store_lib.list()[0].video_id
    store_lib.remove(removed)
    reopened = Library(root)
    assert reopened.vector_store == store
    assert removed not in {v.video_id for v in reopened.search("red", backend="tiny", top_k_videos=3).videos}
    with pytest.raises(LibraryError, match=f"keeps its vectors in {store}"):
        Library(root, vector_store="faiss")


def assert_same_hits(got: list[list[VideoHit]], want: list[list[VideoHit]]) -> None:
    """The same videos in the same order with the same best clips, and scores within 1e-12
    (a store's search rescored in float64 against faiss's)."""
    for g, w in zip(got, want, strict=True):
        pairs = [(h.video_key, h.best_clip) for h in g], [(h.video_key, h.best_clip) for h in w]
        assert pairs[0] == pairs[1], f"got (video, best clip) {pairs[0]}, wanted {pairs[1]}"
        np.testing.assert_allclose([h.score for h in g], [h.score for h in w], rtol=0, atol=1e-12)


# --- a writer and readers sharing one store ----------------------------------------------------------

PICTURES = 10  # different contents among the videos; the others are copies of them


def make_videos(folder: Path, n: int) -> tuple[list[Path], dict[str, Path]]:
    """`n` small videos (3 s: 2 clips) showing PICTURES different pictures: the copies of one
    differ only by bytes after the video stream (distinct files, equal frames: their scores tie
    exactly). Returns (videos, {sha256 of a video: the picture's own file})."""
    colours = ["red", "green", "blue", "yellow", "white", "orange", "purple", "cyan", "pink", "gray"]
    pictures = []
    for c in range(PICTURES):
        segments = [(colours[c], 0.5 + 0.25 * c), (colours[(3 * c + 1) % len(colours)], 3.0)]
        pictures.append(
            make_video(folder / "pictures" / f"p{c}.mp4", segments=segments, size=(64, 48), fps=8)
        )
    videos, picture_of = [], {}
    for i in range(n):
        path = folder / f"v{i:03d}.mp4"
        path.write_bytes(pictures[i % PICTURES].read_bytes() + b"\0" * (i // PICTURES + 1))
        videos.append(path)
        picture_of[hashlib.sha256(path.read_bytes()).hexdigest()] = pictures[i % PICTURES]
    return videos, picture_of


class PictureExtractor:
    """An extractor (c2f.features.parallel.Extractor) for the videos of `make_videos`: a copy's
    frames are its picture's, so each picture is extracted once (extract_features, the real
    thing) and each copy gets those features under its own id and hash. The writer's path from
    there on (feature file, catalog, store) is `c2f index --workers`'s, minus 190 equal decodings."""

    def __init__(self, picture_of: dict[str, Path]) -> None:
        self.picture_of = picture_of
        self.features: dict[Path, ClipFeatures] = {}

    def __call__(
        self, jobs: Sequence[VideoJob], settings: FeatureSettings, device: object, progress: object
    ) -> Iterator[JobResult]:
        from c2f.features.extract import extract_features
        from c2f.features.parallel import JobResult

        for i, job in enumerate(jobs):
            picture = self.picture_of[job.content_hash]
            if picture not in self.features:
                self.features[picture] = extract_features(picture, settings, device=device)
            feats = self.features[picture]
            video = replace(feats.video, content_hash=job.content_hash)
            yield JobResult(i, replace(feats, video_id=job.video_id, video=video), None)


def search_loop(
    root: Path, done: Path, out: Path, seed: int, pause_s: float = 0.05, max_s: float = 300.0
) -> None:
    """A reader: until `done` exists (then once more), open the library (a fresh Library every
    other round, else the same one again), search 3 query vectors in one snapshot, append
    {keys, queries, hits, in_store, in_memory, store_answers} to `out` (JSON lines) and pause
    `pause_s` (the writer needs the CPU). Bounded by `max_s`."""
    from c2f.search.backends import default_index_for

    rng = np.random.default_rng(seed)
    deadline = time.monotonic() + max_s
    lib = None
    with open(out, "a") as f:
        for round_ in range(100_000):
            finished = done.exists() or time.monotonic() > deadline
            if lib is None or round_ % 2 == 0:
                lib = Library(root)
            spec = default_index_for(lib.settings)
            try:
                with lib.snapshot(spec.fingerprint, spec.vectors_of) as (index, indexed):
                    queries = rng.standard_normal((3, index.dim)).astype(np.float32)
                    answers = _record_store_answers(index)
                    hits = index.search_videos(queries, K)
                    keys = sorted(indexed)
                    held = {**_held(index), "store_answers": answers}
            except LibraryError:  # nothing indexed yet
                if finished:
                    return
                time.sleep(pause_s)
                continue
            rows = [[[h.video_key, h.score, h.best_clip] for h in row] for row in hits]
            record = {"keys": keys, "queries": queries.tolist(), "hits": rows, **held}
            f.write(json.dumps(record) + "\n")
            f.flush()
            if finished:
                return
            time.sleep(pause_s)


def _held(index: object) -> dict:
    """Where a reader's index held its snapshot's videos: {in_store: keys searched in the store,
    in_memory: keys searched from their feature files} (nothing for a faiss index)."""
    from c2f.index.external_store import ExternalIndex

    if not isinstance(index, ExternalIndex):
        return {}
    return {"in_store": sorted(index._lengths), "in_memory": sorted(index._overlay)}


def _record_store_answers(index: object) -> list[dict]:
    """A list that gets, for each query row the store's index searches next, the store's last
    answer to it: {limit, answer: [[video key, store score], ...]} (the float32 hits that proposed
    the candidates). Empty for a faiss index."""
    from c2f.index.external_store import ExternalIndex

    answers: list[dict] = []
    if not isinstance(index, ExternalIndex):
        return answers
    cls = type(index)

    def search_one(q: np.ndarray, k: int) -> list:
        answers.append({})
        return cls._search_one(index, q, k)

    def nearest(q: np.ndarray, limit: int) -> list[tuple[int, float]]:
        hits = cls._nearest(index, q, limit)
        answers[-1].update(limit=limit, answer=[[int(key), float(score)] for key, score in hits])
        return hits

    index._search_one, index._nearest = search_one, nearest  # type: ignore[method-assign]
    return answers


def _python(code: str) -> subprocess.Popen:
    """A Python process running `code` with tests/ importable (stderr kept for the failure message)."""
    code = f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nfrom pathlib import Path\n" + code
    return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)


def add_videos_from(job: Path) -> None:
    """A writer process: adds the videos of the JSON `job` ({root, videos, pictures, save_every_s})
    with a new version saved every `save_every_s` (the index gets the videos committed since in one
    write); exits 1 when a video failed."""
    import c2f.library.ingest as ingest

    spec = json.loads(job.read_text())
    ingest.INDEX_SAVE_EVERY_S = spec["save_every_s"]
    pictures = {h: Path(p) for h, p in spec["pictures"].items()}
    lib = Library(Path(spec["root"]))
    report = lib.add([Path(p) for p in spec["videos"]], copy=False, extractor=PictureExtractor(pictures))
    sys.exit(1 if report.failed else 0)


def writer_process(
    tmp_path: Path,
    root: Path,
    videos: list[Path],
    picture_of: dict[str, Path],
    before: str = "",
    save_every_s: float = 0.5,
) -> subprocess.Popen:
    """A process adding `videos` to the library at `root` (`before`: Python run first, e.g. a crash
    point), saving a new version for the readers every `save_every_s` (0: after each video)."""
    job = tmp_path / "writer-job.json"
    job.write_text(json.dumps({"root": str(root), "videos": [str(p) for p in videos], "save_every_s": save_every_s,
                               "pictures": {h: str(p) for h, p in picture_of.items()}}))  # fmt: skip
    return _python(
        f"{before}\nfrom vectorstore_checks import add_videos_from; add_videos_from(Path({str(job)!r}))"
    )


def writer_and_readers(
    tmp_path: Path,
    store: str,
    n_videos: int,
    readers: int,
    processes: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> dict:
    """One writer adds `n_videos` videos to a new library on `store` while `readers` readers
    search it in a loop (processes, or threads of this process); every search is checked against
    the exact faiss search of the same snapshot. Returns the figures."""
    videos, picture_of = make_videos(tmp_path / "videos", n_videos)
    root = tmp_path / "lib"
    Library(root, settings="tiny-clip-only", vector_store=store)
    done = tmp_path / "writer-done"
    outs = [tmp_path / f"reader{i}.jsonl" for i in range(readers)]
    started = time.monotonic()
    if processes:
        procs = [
            _python(f"from vectorstore_checks import search_loop; search_loop(Path({str(root)!r}), "
                    f"Path({str(done)!r}), Path({str(out)!r}), {seed})")
            for seed, out in enumerate(outs)
        ]  # fmt: skip
        try:
            writer = writer_process(tmp_path, root, videos, picture_of)
            _, err = writer.communicate(timeout=600)
            assert writer.returncode == 0, err[-3000:]
        finally:
            done.touch()
            for p in procs:
                _, err = p.communicate(timeout=300)
                assert p.returncode == 0, err[-3000:]
    else:
        import c2f.library.ingest as ingest

        monkeypatch.setattr(ingest, "INDEX_SAVE_EVERY_S", 0.5)
        errors: list[BaseException] = []

        def reader(out: Path, seed: int) -> None:
            try:
                search_loop(root, done, out, seed)
            except BaseException as exc:  # reported by the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=reader, args=(out, seed)) for seed, out in enumerate(outs)]
        for t in threads:
            t.start()
        try:
            report = Library(root).add(videos, copy=False, extractor=PictureExtractor(picture_of))
        finally:
            done.touch()
            for t in threads:
                t.join(timeout=300)
        if errors:
            raise errors[0]
        assert report.ok and len(report.added) == n_videos, (report.failed, report.duplicates)
    figures = check_searches(root, outs)
    figures["seconds"] = round(time.monotonic() - started, 1)
    return figures


def check_searches(root: Path, outs: list[Path]) -> dict:
    """Every recorded search equals the exact faiss search over the same snapshot's videos (read
    from their feature files): the same videos, in the same order, with the same best clips and
    scores. Returns {searches per reader, snapshots, mismatches, and `mismatched`: what the first
    few mismatches got and wanted, for a failure message}."""
    from c2f.index import ClipIndex
    from c2f.search.backends import default_index_for

    lib = Library(root)
    spec = default_index_for(lib.settings)
    records = [[json.loads(line) for line in out.read_text().splitlines()] for out in outs]
    vectors = {r.key: spec.vectors_of(lib.load_features(r.video_id)) for r in lib.catalog.all("indexed")}
    exact_of: dict[tuple[int, ...], ClipIndex] = {}
    mismatched: list[dict] = []
    for reader, search, rec in ((i, j, rec) for i, recs in enumerate(records) for j, rec in enumerate(recs)):
        keys = tuple(rec["keys"])
        if keys not in exact_of:
            exact_of[keys] = ClipIndex(next(iter(vectors.values())).shape[1], "fp", kind="exact")
            exact_of[keys].add_many({k: vectors[k] for k in keys})
        want = exact_of[keys].search_videos(np.asarray(rec["queries"], np.float32), K)
        for row, (got_row, want_row) in enumerate(zip(rec["hits"], want, strict=True)):
            wanted = [[h.video_key, h.score, h.best_clip] for h in want_row]
            if len(got_row) != len(wanted) or not all(map(_same_hit, got_row, wanted)):
                mismatched.append(_mismatch(reader, search, row, rec, got_row, wanted))
    sizes = sorted({len(k) for k in exact_of})
    return {
        "searches_per_reader": [len(r) for r in records],
        "snapshots": len(exact_of),
        "smallest_snapshot": sizes[0] if sizes else 0,
        "largest_snapshot": sizes[-1] if sizes else 0,
        "mismatches": len(mismatched),
        "mismatched": mismatched[:3],
    }


def _same_hit(got: list, wanted: list) -> bool:
    """[video key, score, best clip]: the same video and best clip, the score within 1e-12."""
    return got[0] == wanted[0] and got[2] == wanted[2] and abs(got[1] - wanted[1]) <= 1e-12


def _mismatch(reader: int, search: int, row: int, rec: dict, got: list, wanted: list) -> dict:
    """What one mismatched search got and wanted: [video key, score, best clip] from the first
    difference on, the videos only one side found, which videos the reader's index held in the
    store and which in memory, and the store's last answer for that query (its limit, how many
    videos it held, its last float32 score, and the store score of each video above: None where
    the answer left it out)."""
    first = next((i for i, (g, w) in enumerate(zip(got, wanted, strict=False)) if not _same_hit(g, w)),
                 min(len(got), len(wanted)))  # fmt: skip
    got_keys, wanted_keys = {g[0] for g in got}, {w[0] for w in wanted}
    answers = rec.get("store_answers", [])
    answer = answers[row] if row < len(answers) and answers[row] else {"limit": None, "answer": []}
    store_score: dict[int, float] = {}
    for key, score in answer["answer"]:
        store_score.setdefault(key, score)
    shown = [*got[first : first + 4], *wanted[first : first + 4]]
    shown_keys = sorted({h[0] for h in shown} | (got_keys ^ wanted_keys))
    return {
        "reader": reader, "search": search, "query_row": row, "snapshot": len(rec["keys"]),
        "in_store": len(rec.get("in_store", [])), "in_memory": rec.get("in_memory"),
        "first_difference": first, "got": got[first : first + 4], "wanted": wanted[first : first + 4],
        "only_got": sorted(got_keys - wanted_keys), "only_wanted": sorted(wanted_keys - got_keys),
        "store_held_only_wanted": sorted(wanted_keys - got_keys & set(rec.get("in_store", []))),
        "store_answer": {"limit": answer["limit"], "videos": len(store_score),
                         "last_score": answer["answer"][-1][1] if answer["answer"] else None,
                         "score_of": {key: store_score.get(key) for key in shown_keys}},
    }  # fmt: skip


def saved_store(root: Path) -> ExternalIndex:
    """The store the library's current saved version points to, opened for reading."""
    from c2f.library.indexes import load_saved_index
    from c2f.search.backends import default_index_for

    lib = Library(root)
    fingerprint = default_index_for(lib.settings).fingerprint
    return load_saved_index(lib.index_dir(fingerprint) / lib.versions.current(fingerprint))


def check_store_holds_the_catalog(root: Path) -> None:
    """Every indexed video is listed complete in the store with exactly its feature file's vectors,
    and nothing else is listed or pending."""
    from c2f.search.backends import default_index_for

    lib = Library(root)
    spec = default_index_for(lib.settings)
    store = saved_store(root)
    rows = dict(store._scan_listing())
    indexed = {r.key: r for r in lib.catalog.all("indexed")}
    assert sorted(rows) == sorted(indexed) and all(row.complete for row in rows.values())
    want = {key: spec.vectors_of(lib.load_features(r.video_id)) for key, r in indexed.items()}
    got = store._fetch_vectors({key: len(v) for key, v in want.items()})
    assert sorted(got) == sorted(want)
    for key, v in want.items():
        np.testing.assert_array_equal(got[key], v / np.linalg.norm(v, axis=1, keepdims=True))

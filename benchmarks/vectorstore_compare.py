"""Vector stores with an embedded mode, measured against each other and the exact faiss index.

The same synthetic library (60-clip videos, 512-d, i.i.d. L2-normalised clips: an exact scan
cannot tell them from real ones) in each candidate's embedded mode:

  faiss        ClipIndex kind="exact" (the reference, RAM)
  milvus       Milvus Lite via MilvusClipIndex: a row per clip, grouping search by video (FLAT)
  lance-clips  LanceDB, a row per clip, flat exact scan; no grouping search, so the top clips are
               fetched with a growing limit until 10 distinct videos come back (the first 10
               distinct videos in exact clip order ARE the exact top-10 by max over clips)
  lance-video  LanceDB, a row per video holding its clips as a multivector (MaxSim = max over
               clips for one query vector: Eq. 3), flat exact scan
  qdrant-groups  qdrant-client local mode (path=...), a point per clip, query_points_groups by
               video with exact=True
  qdrant-edge  QdrantClipIndex (c2f/index/qdrant_store.py) on qdrant-edge, Qdrant's embedded Rust
               engine: a point per video, its clips a multivector scored by MaxSim (= max over
               clips for one query vector: Eq. 3), exact scan, vectors memory-mapped from disk
  qdrant-local   QdrantClipIndex on qdrant-client's local mode (Python, in RAM): the calls that
               reach a Qdrant server or cluster, run without one

Per store and size: insert seconds and bytes on disk (built in a child process), the memory a
reader holds after opening it and answering 5 queries (a second child process: resident set of it
and its children, e.g. Milvus Lite's server, minus the same before opening), and query latency of
the exact top-10 videos measured in this process, interleaved round-robin over the stores (the
machine is shared: the ratio to faiss exact from the same queries is the figure to compare), with
recall@10 against faiss exact. The growth law (latency = a + b x clips) is fitted per store and
extrapolated, with disk, to 10M videos (600M clips). Prints one JSON object and saves
benchmarks/results_vectorstore_compare.json.

python benchmarks/vectorstore_compare.py --sizes 250,1000,2000 --large 5000 --queries 20
(stores whose packages are missing are left out: pip install lancedb -r requirements-qdrant.txt
-r requirements-milvus.txt; ~9 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

K = 10
BATCH_VIDEOS = 100  # videos per insert call (the library adds a batch at a time)


def make_library(n_videos: int, clips: int, dim: int) -> np.ndarray:
    """(V, clips, dim) float32 unit vectors, the same for every store (seeded by the size)."""
    rng = np.random.default_rng(n_videos)
    v = rng.standard_normal((n_videos, clips, dim), dtype=np.float32)
    return v / np.linalg.norm(v, axis=2, keepdims=True)


def make_queries(n: int, dim: int) -> np.ndarray:
    q = np.random.default_rng(12345).standard_normal((n, dim), dtype=np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)  # (Q, dim)


def du(path: Path) -> int:
    return (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else path.stat().st_size
    )


def tree_rss_mb() -> float:
    """Resident memory of this process and all its descendants (Milvus Lite runs a server child)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            parents[int(p.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            rss[int(p.name)] = int(stat.rsplit(")", 1)[1].split()[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    mine, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in mine:
                mine.add(child)
                frontier.append(child)
    return sum(rss.get(p, 0) for p in mine) / 2**20


# --- the candidates: build(folder, data), open(folder), top(q) -> [(video, score)] best first ---------


class Faiss:
    name = "faiss"
    modules = ("faiss", "c2f.index")

    def build(self, d: Path, data: np.ndarray) -> None:
        from c2f.index import ClipIndex

        index = ClipIndex(data.shape[2], "bench", kind="exact")
        for s in range(0, len(data), BATCH_VIDEOS):
            index.add_many({k: data[k] for k in range(s, min(s + BATCH_VIDEOS, len(data)))})
        index.save(d)

    def open(self, d: Path) -> None:
        from c2f.index import ClipIndex

        self.index = ClipIndex.load(d)

    def top(self, q: np.ndarray) -> list[tuple[int, float]]:
        return [(h.video_key, h.score) for h in self.index.search_videos(q, K, approximate=False)[0]]


class Milvus:
    name = "milvus"
    modules = ("pymilvus", "c2f.index.milvus_store")

    def build(self, d: Path, data: np.ndarray) -> None:
        from c2f.index.milvus_store import MilvusClipIndex
        from c2f.library.lease import writer_lease

        store = MilvusClipIndex(str(d / "m.db"), data.shape[2], "bench")
        store.open_for_writing(writer_lease(d / "write.lock"))
        for s in range(0, len(data), BATCH_VIDEOS):
            store.add_many({k: data[k] for k in range(s, min(s + BATCH_VIDEOS, len(data)))})
        store.save(d / "ptr")

    def open(self, d: Path) -> None:
        from c2f.index.milvus_store import MilvusClipIndex

        self.index = MilvusClipIndex.load(d / "ptr")

    def top(self, q: np.ndarray) -> list[tuple[int, float]]:
        return [(h.video_key, h.score) for h in self.index.search_videos(q, K)[0]]


class LanceClips:
    name = "lance-clips"
    modules = ("lancedb", "pyarrow")

    def build(self, d: Path, data: np.ndarray) -> None:
        import lancedb
        import pyarrow as pa

        n, clips, dim = data.shape
        table = None
        for s in range(0, n, BATCH_VIDEOS):
            part = data[s : s + BATCH_VIDEOS]  # (B, clips, dim)
            videos = np.repeat(np.arange(s, s + len(part)), clips)
            rows = pa.table(
                {
                    "video": pa.array(videos, pa.int64()),
                    "clip": pa.array(np.tile(np.arange(clips), len(part)), pa.int64()),
                    "vec": pa.FixedSizeListArray.from_arrays(pa.array(part.reshape(-1)), dim),
                }
            )
            if table is None:
                table = lancedb.connect(d).create_table("clips", rows)
            else:
                table.add(rows)
        # compact the per-batch fragments, and drop the versions that compaction replaced
        table.optimize(cleanup_older_than=timedelta(0), delete_unverified=True)

    def open(self, d: Path) -> None:
        import lancedb

        self.table = lancedb.connect(d).open_table("clips")

    def top(self, q: np.ndarray) -> list[tuple[int, float]]:
        limit = 4 * K
        while True:  # exact clip order; grow the limit until K distinct videos are in it
            rows = self.table.search(q).distance_type("dot").select(["video"]).limit(limit).to_arrow()
            best: dict[int, float] = {}
            for v, dist in zip(rows["video"].to_pylist(), rows["_distance"].to_pylist(), strict=True):
                best.setdefault(v, 1.0 - dist)  # LanceDB's dot distance is 1 - <q, x>
            if len(best) >= K or len(rows) < limit:
                return list(best.items())[:K]
            limit *= 4


class LanceVideo:
    name = "lance-video"
    modules = ("lancedb", "pyarrow")

    def build(self, d: Path, data: np.ndarray) -> None:
        import lancedb
        import pyarrow as pa

        n, clips, dim = data.shape
        table = None
        for s in range(0, n, BATCH_VIDEOS):
            part = data[s : s + BATCH_VIDEOS]
            inner = pa.FixedSizeListArray.from_arrays(pa.array(part.reshape(-1)), dim)
            vec = pa.ListArray.from_arrays(pa.array(np.arange(len(part) + 1) * clips, pa.int32()), inner)
            rows = pa.table({"video": pa.array(np.arange(s, s + len(part)), pa.int64()), "vec": vec})
            if table is None:
                table = lancedb.connect(d).create_table("videos", rows)
            else:
                table.add(rows)
        table.optimize(cleanup_older_than=timedelta(0), delete_unverified=True)

    def open(self, d: Path) -> None:
        import lancedb

        self.table = lancedb.connect(d).open_table("videos")

    def top(self, q: np.ndarray) -> list[tuple[int, float]]:
        rows = self.table.search([q]).distance_type("cosine").select(["video"]).limit(K).to_arrow()
        return [
            (v, 1.0 - s)
            for v, s in zip(rows["video"].to_pylist(), rows["_distance"].to_pylist(), strict=True)
        ]


class QdrantGroups:
    name = "qdrant-groups"
    modules = ("qdrant_client",)

    def build(self, d: Path, data: np.ndarray) -> None:
        from qdrant_client import QdrantClient, models

        n, clips, dim = data.shape
        client = QdrantClient(path=str(d))
        client.create_collection(
            "clips", vectors_config=models.VectorParams(size=dim, distance=models.Distance.DOT)
        )
        for s in range(0, n, BATCH_VIDEOS):
            part = data[s : s + BATCH_VIDEOS].reshape(-1, dim)
            ids = range(s * clips, s * clips + len(part))
            payloads = [{"video": i // clips, "clip": i % clips} for i in ids]
            client.upsert("clips", models.Batch(ids=list(ids), vectors=part.tolist(), payloads=payloads))
        client.close()

    def open(self, d: Path) -> None:
        from qdrant_client import QdrantClient, models

        self.client, self.models = QdrantClient(path=str(d)), models

    def top(self, q: np.ndarray) -> list[tuple[int, float]]:
        found = self.client.query_points_groups(
            "clips",
            query=q.tolist(),
            group_by="video",
            limit=K,
            group_size=1,
            search_params=self.models.SearchParams(exact=True),
        )
        return [(int(g.id), g.hits[0].score) for g in found.groups]


class QdrantStore:
    """QdrantClipIndex (a point per video, its clips a multivector scored by MaxSim) at `scheme`."""

    name, scheme = "qdrant-edge", "qdrant://"
    modules = ("qdrant_edge", "c2f.index.qdrant_store")

    def build(self, d: Path, data: np.ndarray) -> None:
        from c2f.index.qdrant_store import QdrantClipIndex
        from c2f.library.lease import writer_lease

        store = QdrantClipIndex(self.scheme + str(d / "q"), data.shape[2], "bench")
        store.open_for_writing(writer_lease(d / "write.lock"))
        for s in range(0, len(data), BATCH_VIDEOS):
            store.add_many({k: data[k] for k in range(s, min(s + BATCH_VIDEOS, len(data)))})
        store.save(d / "ptr")

    def open(self, d: Path) -> None:
        from c2f.index.qdrant_store import QdrantClipIndex

        self.index = QdrantClipIndex.load(d / "ptr")

    def top(self, q: np.ndarray) -> list[tuple[int, float]]:
        return [(h.video_key, h.score) for h in self.index.search_videos(q, K)[0]]


class QdrantLocal(QdrantStore):
    name, scheme = "qdrant-local", "qdrant-local://"
    modules = ("qdrant_client", "c2f.index.qdrant_store")


STORE_NOTES = {
    "faiss": "ClipIndex kind=exact (RAM), the reference",
    "milvus": "Milvus Lite (MilvusClipIndex): row per clip, FLAT, grouping search by video",
    "lance-clips": "LanceDB: row per clip, flat exact scan, top clips with a growing limit until 10 videos",
    "lance-video": "LanceDB: row per video, clips as a multivector (MaxSim), flat exact scan",
    "qdrant-groups": "qdrant-client local mode: point per clip, query_points_groups by video, exact",
    "qdrant-edge": "QdrantClipIndex on qdrant-edge (embedded Rust, vectors memory-mapped from disk): point per "
    "video, clips as a multivector (MaxSim), exact scan, candidates rescored in float64",
    "qdrant-local": "QdrantClipIndex on qdrant-client's local mode (Python, in RAM; the cluster client's calls)",
}
PACKAGES = {
    "faiss": "faiss-cpu",
    "milvus": "-r requirements-milvus.txt",
    "lance-clips": "lancedb",
    "lance-video": "lancedb",
    "qdrant-groups": "qdrant-client",
    "qdrant-edge": "-r requirements-qdrant.txt",
    "qdrant-local": "-r requirements-qdrant.txt",
}
STORES = {s.name: s for s in (Faiss, Milvus, LanceClips, LanceVideo, QdrantGroups, QdrantStore, QdrantLocal)}


# --- child processes: build (insert time, disk), open (a reader's memory) -----------------------------


def installed(name: str) -> bool:
    """Whether the store's client libraries import here (else it is left out, with a note)."""
    try:
        for module in STORES[name].modules:
            __import__(module)
    except ImportError as exc:
        print(f"{name}: left out ({exc}); pip install {PACKAGES[name]}", file=sys.stderr)
        return False
    return True


def child(args: argparse.Namespace) -> None:
    store, d = STORES[args.store](), Path(args.dir)
    if args.child == "build":
        data = make_library(args.videos, args.clips, args.dim)
        d.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        store.build(d, data)
        out = {"insert_s": time.perf_counter() - t, "disk_bytes": du(d)}
    else:
        queries = make_queries(5, args.dim)
        for module in store.modules:  # the client libraries are not the store's data
            __import__(module)
        base = tree_rss_mb()
        store.open(d)
        for q in queries:
            store.top(q)
        out = {"reader_rss_mb": tree_rss_mb() - base}
    print(json.dumps(out))


def run_child(kind: str, store: str, d: Path, n: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, "--store", store, "--dir", str(d), "--videos", str(n),
           "--clips", str(args.clips), "--dim", str(args.dim)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} {store} {n}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def one_size(n: int, names: list[str], args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    for name in names:
        d = tmp / f"{name}-{n}"
        rows[name] = run_child("build", name, d, n, args)
        rows[name].update(run_child("open", name, d, n, args))
        print(f"{n} {name} built {rows[name]}", file=sys.stderr)
    stores = {}
    for name in names:
        stores[name] = STORES[name]()
        stores[name].open(tmp / f"{name}-{n}")
    queries = make_queries(args.queries + 1, args.dim)
    times: dict[str, list[float]] = {name: [] for name in names}
    hits: dict[str, int] = dict.fromkeys(names, 0)
    for i, q in enumerate(queries):
        order = names[i % len(names) :] + names[: i % len(names)]  # round robin: same load for all
        found = {}
        for name in order:
            t = time.perf_counter()
            found[name] = stores[name].top(q)
            times[name].append((time.perf_counter() - t) * 1000)
        want = {v for v, _ in found["faiss"]}
        if i == 0:  # warm-up query: not timed
            continue
        for name in names:
            hits[name] += len({v for v, _ in found[name]} & want)
    faiss_ms = np.array(times["faiss"][1:])
    out = {}
    for name in names:
        ms = np.array(times[name][1:])
        r = rows[name]
        out[name] = {
            "insert_s": round(r["insert_s"], 2),
            "p50_ms": round(float(np.median(ms)), 2),
            "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "ratio_to_faiss_p50": round(float(np.median(ms / faiss_ms)), 2),
            "recall_at_10_vs_exact": hits[name] / (K * args.queries),
            "disk_bytes": r["disk_bytes"],
            "disk_bytes_per_clip": round(r["disk_bytes"] / (n * args.clips), 1),
            "reader_rss_mb": round(r["reader_rss_mb"], 1),
        }
    del stores
    return {"videos": n, "clips": n * args.clips, "stores": out}


def fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of a least-squares line; through the origin from one point."""
    if len(x) < 2:
        return float(y[0] / x[0]), 0.0
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def growth(sizes: list[dict[str, Any]], name: str, target_clips: float) -> dict[str, Any]:
    pts = [(s["clips"], s["stores"][name]) for s in sizes if name in s["stores"]]
    clips = np.array([c for c, _ in pts], float)
    lat = np.array([r["p50_ms"] for _, r in pts], float)
    ratio = np.array([r["ratio_to_faiss_p50"] for _, r in pts], float)
    slope, intercept = fit(clips, lat)
    disk = fit(clips, np.array([r["disk_bytes"] for _, r in pts], float))[
        0
    ]  # bytes per clip, fixed costs aside
    rss_slope = fit(clips, np.array([r["reader_rss_mb"] for _, r in pts], float))[0] * 2**20  # bytes per clip
    return {
        "p50_ms_per_million_clips": round(slope * 1e6, 1),
        "p50_ms_intercept": round(intercept, 1),
        "ratio_to_faiss_p50_median_over_sizes": round(float(np.median(ratio)), 2),
        "disk_bytes_per_clip": round(disk, 1),
        "reader_rss_bytes_per_clip": round(rss_slope, 1),
        "at_10M_videos": {
            "p50_s_one_node": round((intercept + slope * target_clips) / 1000, 1),
            "disk_tb": round(disk * target_clips / 1e12, 2),
            "reader_rss_tb": round(max(rss_slope, 0.0) * target_clips / 1e12, 2),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="250,1000,2000", help="video counts every store is measured at")
    ap.add_argument("--large", default="5000", help="video counts for the stores in --fast only")
    ap.add_argument("--fast", default="lance-clips,lance-video,qdrant-edge")
    ap.add_argument("--small", default="100", help="video counts for the stores in --slow only")
    ap.add_argument("--slow", default="qdrant-groups", help="stores too slow to insert past --small")
    ap.add_argument("--stores", default=",".join(STORES))
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--child", choices=["build", "open"])
    ap.add_argument("--store")
    ap.add_argument("--dir")
    ap.add_argument("--videos", type=int)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    names = ["faiss", *[s for s in args.stores.split(",") if s != "faiss" and installed(s)]]
    slow = [s for s in args.slow.split(",") if s in names]
    fast = [s for s in args.fast.split(",") if s in names and s not in slow]
    plan = [(int(n), ["faiss", *slow]) for n in args.small.split(",") if n and slow]
    plan += [(int(n), [s for s in names if s not in slow]) for n in args.sizes.split(",")]
    plan += [(int(n), ["faiss", *fast]) for n in args.large.split(",") if n]
    sizes = []
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for n, these in plan:
            sizes.append(one_size(n, these, args, Path(tmp)))
            print(json.dumps(sizes[-1]), file=sys.stderr)
    target = 10_000_000 * args.clips
    result = {
        "what": "exact top-10 videos by max over clips (Eq. 3), each store in its embedded mode",
        "stores": {name: STORE_NOTES[name] for name in names},
        "dim": args.dim,
        "clips_per_video": args.clips,
        "queries": args.queries,
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "wall_s": round(time.time() - started, 1),
        "sizes": sizes,
        "growth": {
            name: growth(sizes, name, target) for name in names if any(name in s["stores"] for s in sizes)
        },
        "law": "latency = a + b x clips (every store here scans every clip); disk and reader memory = bytes/clip x clips",
    }
    out = Path(__file__).parent / "results_vectorstore_compare.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""The Milvus vector store (Milvus Lite, one local file) against the exact faiss index.

Synthetic libraries of 60-clip videos (512-d, L2-normalised, clips following shots as in
search_latency.py would make no difference to an exact FLAT scan: i.i.d. here), at each size:
insert time, query latency (p50/p95 over --queries), video recall@10 against the exact faiss
search (ClipIndex kind="exact"), the store's bytes on disk and this process's peak RSS. The
growth law is fitted over the sizes (latency and disk against clips). Prints one JSON object and
saves benchmarks/results_vectorstore_scale.json.

python benchmarks/vectorstore_scale.py --sizes 500,1000,2000 --queries 20
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from c2f.index import ClipIndex
from c2f.index.milvus_store import MilvusClipIndex
from c2f.library.lease import writer_lease


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def one_size(n_videos: int, clips: int, dim: int, queries: int, tmp: Path, rng) -> dict:
    data = {}
    for key in range(n_videos):
        v = rng.standard_normal((clips, dim)).astype(np.float32)
        data[key] = v / np.linalg.norm(v, axis=1, keepdims=True)
    exact = ClipIndex(dim, "bench", kind="exact")
    exact.add_many(data)
    db = tmp / f"v{n_videos}.db"
    t = time.perf_counter()
    store = MilvusClipIndex(str(db), dim, "bench")
    store.open_for_writing(writer_lease(tmp / "write.lock"))
    store.add_many(data)
    store.save(tmp / f"ptr{n_videos}")  # flushes
    insert_s = time.perf_counter() - t
    store = MilvusClipIndex.load(tmp / f"ptr{n_videos}")  # a reader opening the saved store
    qs = rng.standard_normal((queries, dim)).astype(np.float32)
    store.search_videos(qs[0], 10)  # warm-up
    times, hits = [], 0
    for q in qs:
        t = time.perf_counter()
        got = store.search_videos(q, 10)[0]
        times.append((time.perf_counter() - t) * 1000)
        want = exact.search_videos(q, 10)[0]
        hits += len({h.video_key for h in got} & {h.video_key for h in want})
    faiss_ms = []
    for q in qs:
        t = time.perf_counter()
        exact.search_videos(q, 10)
        faiss_ms.append((time.perf_counter() - t) * 1000)
    return {
        "videos": n_videos,
        "clips": n_videos * clips,
        "insert_s": round(insert_s, 2),
        "p50_ms": round(float(np.percentile(times, 50)), 1),
        "p95_ms": round(float(np.percentile(times, 95)), 1),
        "faiss_exact_p50_ms": round(float(np.percentile(faiss_ms, 50)), 2),
        "recall_at_10_vs_exact": hits / (10 * queries),
        "disk_bytes": du(db),
        "disk_bytes_per_clip": round(du(db) / (n_videos * clips), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="500,1000,2000")
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=20)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(s) for s in args.sizes.split(",")]:
            rows.append(one_size(n, args.clips, args.dim, args.queries, Path(tmp), rng))
            print(json.dumps(rows[-1]), file=sys.stderr)
    clips = np.array([r["clips"] for r in rows], float)
    lat = np.array([r["p50_ms"] for r in rows], float)
    slope, intercept = np.polyfit(clips, lat, 1) if len(rows) > 1 else (lat[0] / clips[0], 0.0)
    result = {
        "store": "Milvus Lite (pymilvus MilvusClient on a local file), FLAT inner product, grouping search by video",
        "dim": args.dim,
        "clips_per_video": args.clips,
        "sizes": rows,
        "growth": {
            "p50_ms_per_million_clips": round(slope * 1e6, 1),
            "p50_ms_intercept": round(intercept, 1),
            "law": "latency = intercept + slope x clips (a FLAT scan reads every clip); disk = bytes/clip x clips",
        },
    }
    out = Path(__file__).parent / "results_vectorstore_scale.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

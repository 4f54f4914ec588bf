"""Search latency of the clip index on synthetic libraries (60 clips per video, 512-d by default).

Prints ONE JSON object keyed by library size. Per size: query latency of the coarse stage (top-10
videos, text encoding excluded), the fine stage (c2f.search's zero-shot localizer on the top-10
videos' clip score curves), text encoding (CLIP ViT-B/32 text tower, full size, random weights:
timing does not depend on the weights), end to end, index build time, memory per video, video
recall@10 of the index as configured against exact search, and brute-force numpy max-pooling
over every clip measured in the same run (its queries interleaved with the exact search's, so
both see the same machine load).

Exact search: the scan precision is chosen by measurement (c2f.tuning task "scan", measured in
this run: a fresh tuning cache unless C2F_TUNING_CACHE is set). Per size the JSON also gives,
for every candidate precision, its p50 on the same library with the precision forced and its
certificate bound e (worst case |score| <= 1, and the median e the queries actually used), plus
the CPU, torch's kernel level (ATEN_CPU_CAPABILITY) and the oneDNN limit in force. `--out FILE`
also writes the JSON there.

Synthetic data (stated, because the exact search's speed depends on it): each video has a base
direction; its shots (geometric lengths, mean --shot-clips) are base + shot noise, its clips are
shot + clip noise (--clip-noise), normalised. The JSON reports the resulting consecutive-clip and
within-video cosines. Queries are noisy copies of a random clip (cosine --query-cosine with it, a
CLIP text-to-frame level). "iid" entries repeat the exact search on i.i.d. random clips.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,10000,100000", help="comma-separated numbers of videos")
    p.add_argument("--clips", type=int, default=60, help="clips per video")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--queries", type=int, default=50, help="timed queries per size")
    p.add_argument("--bruteforce-queries", type=int, default=10)
    p.add_argument("--threads", type=int, default=2, help="BLAS / faiss / torch threads")
    p.add_argument("--shot-clips", type=float, default=10.0, help="mean shot length in clips")
    p.add_argument("--shot-noise", type=float, default=0.8, help="shot offset from the video base (norm)")
    p.add_argument("--clip-noise", type=float, default=0.15, help="clip offset from its shot (norm)")
    p.add_argument("--query-cosine", type=float, default=0.35, help="cosine of a query with its clip")
    p.add_argument("--iid-max-size", type=int, default=10000, help="worst case on sizes up to this")
    p.add_argument("--storage", default="auto", help="float32, float16, or auto (float16 from 50k videos on)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scan-queries", type=int, default=20, help="timed queries per forced scan precision")
    p.add_argument("--text-queries", type=int, default=0, help="timed text encodings (default: --queries)")
    p.add_argument("--out", default="", help="also write the JSON to this file")
    return p.parse_args()


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)  # before numpy / faiss / torch load their thread pools

if "C2F_TUNING_CACHE" not in os.environ:  # measure the scan choice in this run
    import tempfile

    os.environ["C2F_TUNING_CACHE"] = os.path.join(tempfile.mkdtemp(prefix="c2f-bench-tuning-"), "tuning.json")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from c2f.index import ClipIndex, measure_recall  # noqa: E402
from c2f.index.scan import PRECISIONS, Int8Scan, certificate_bounds  # noqa: E402

CHUNK_VIDEOS = 1000


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def correlated_videos(rng: np.random.Generator, n: int, args: argparse.Namespace) -> np.ndarray:
    """(n, clips, d) float32 unit clips: base + shot noise + clip noise (see the module doc)."""
    d, c = args.dim, args.clips
    base = unit(rng.standard_normal((n, 1, d), np.float32))
    # Shot id of every clip: a new shot with probability 1 / shot_clips at each clip.
    new_shot = rng.random((n, c)) < 1.0 / args.shot_clips
    new_shot[:, 0] = True
    shot_of_clip = np.cumsum(new_shot, axis=1) - 1  # (n, c)
    shots = base + args.shot_noise * unit(
        rng.standard_normal((n, c, d), np.float32)
    )  # (n, c, d): room for c shots
    shot_vec = np.take_along_axis(shots, shot_of_clip[:, :, None], axis=1)  # (n, c, d)
    noise = args.clip_noise * unit(rng.standard_normal((n, c, d), np.float32))
    return unit(shot_vec + noise)


def iid_videos(rng: np.random.Generator, n: int, args: argparse.Namespace) -> np.ndarray:
    return unit(rng.standard_normal((n, args.clips, args.dim), np.float32))


def build(n: int, make, storage: str, args: argparse.Namespace, seed: int) -> tuple[ClipIndex, float, list]:
    """Index of n synthetic videos generated and added in chunks; returns (index, build s, samples)."""
    rng = np.random.default_rng(seed)
    index = ClipIndex(args.dim, fingerprint="synthetic", kind="exact", storage=storage)
    build_s, samples = 0.0, []
    for start in range(0, n, CHUNK_VIDEOS):
        m = min(CHUNK_VIDEOS, n - start)
        x = make(rng, m, args)  # (m, clips, d)
        if start == 0:
            samples = x[:200]
        t = time.perf_counter()
        index.add_many({start + i: x[i] for i in range(m)})
        build_s += time.perf_counter() - t
    return index, build_s, samples


def data_stats(samples: np.ndarray) -> dict:
    consecutive = np.einsum("vcd,vcd->vc", samples[:, 1:], samples[:, :-1])
    gram = np.einsum("vcd,ved->vce", samples, samples)
    c = samples.shape[1]
    off_diag = (gram.sum((1, 2)) - c) / (c * (c - 1))
    return {
        "consecutive_cosine_mean": round(float(consecutive.mean()), 3),
        "within_video_cosine_mean": round(float(off_diag.mean()), 3),
    }


def make_queries(index: ClipIndex, rng: np.random.Generator, count: int, cosine: float) -> np.ndarray:
    """(count, d) unit queries at `cosine` from a random clip of a random video."""
    rows = rng.integers(0, index.num_clips, count)
    clips = index.vectors()[rows].astype(np.float32)  # (count, d)
    noise = rng.standard_normal(clips.shape).astype(np.float32)
    noise -= (noise * clips).sum(1, keepdims=True) * clips  # orthogonal to the clip
    noise = unit(noise)
    return unit(cosine * clips + np.sqrt(1 - cosine**2) * noise)


def brute_force(index: ClipIndex, q: np.ndarray, k: int) -> list[int]:
    """Numpy max-pooling over every clip (float16 storage is converted in chunks)."""
    x = index.vectors()
    rows = 262_144
    scores = np.concatenate(
        [x[s : s + rows].astype(np.float32, copy=False) @ q for s in range(0, len(x), rows)]
    )
    keys, first_rows = index.storage_layout()
    per_video = np.maximum.reduceat(scores, first_rows)  # (V,)
    top = np.lexsort((keys, -per_video))[:k]
    return keys[top].tolist()


def percentile_ms(times: list[float], p: float) -> float:
    return round(float(np.percentile(np.array(times) * 1e3, p)), 2)


def timed_searches(
    index: ClipIndex, queries: np.ndarray, k: int, brute_queries: int = 0
) -> tuple[list[float], list, list[float]]:
    """Search times and hits per query, and brute-force times of the first `brute_queries`
    queries, each run right after the search of the same query."""
    times, hits, brute = [], [], []
    index.search_videos(queries[0], k)  # warm-up (builds the scan copy or the approximate index)
    for i, q in enumerate(queries):
        t = time.perf_counter()
        hits.append(index.search_videos(q, k)[0])
        times.append(time.perf_counter() - t)
        if i < brute_queries:
            t = time.perf_counter()
            brute_force(index, q, k)
            brute.append(time.perf_counter() - t)
    return times, hits, brute


def agrees_with_brute_force(index: ClipIndex, q: np.ndarray, hits: list, k: int) -> bool:
    """Same top-k as numpy float32 max-pooling up to float32 ties: the returned videos' scores
    match, and no video outside them scores above the k-th by more than float32 rounding."""
    x = index.vectors()
    scores = np.concatenate(
        [x[s : s + 262_144].astype(np.float32, copy=False) @ q for s in range(0, len(x), 262_144)]
    )
    keys, first_rows = index.storage_layout()
    per_video = dict(zip(keys.tolist(), np.maximum.reduceat(scores, first_rows).tolist(), strict=True))
    ours = [per_video[h.video_key] for h in hits]
    outside = max((s for key, s in per_video.items() if key not in {h.video_key for h in hits}), default=-1.0)
    return np.allclose(ours, [h.score for h in hits], atol=1e-5) and outside <= min(ours) + 1e-5


def scan_candidates(index: ClipIndex, queries: np.ndarray, k: int) -> dict:
    """p50 of the exact search with each scan precision forced, and its certificate bound."""
    out = {}
    for precision in PRECISIONS:
        index.scan = precision
        times, hits, _ = timed_searches(index, queries, k)
        scan = index._scan
        used = [float(np.max(scan.error(scan.scores(q)))) for q in queries[:5]]
        bounds = certificate_bounds(
            index.dim, int8_residual=float(scan.residuals().max()) if isinstance(scan, Int8Scan) else None
        )
        out[precision] = {
            "p50_ms": percentile_ms(times, 50),
            "used": index.scan_precision,
            "bound_e_worst": float(f"{bounds[precision]:.3g}"),
            "bound_e_used_median": float(f"{statistics.median(used):.3g}"),
            "copy_mb": round(index.memory_bytes()["scan_copy"] / 2**20, 1),
            "agrees_with_bruteforce": all(
                agrees_with_brute_force(index, q, h, k) for q, h in zip(queries, hits, strict=True)
            ),
        }
    index.scan = "auto"
    return out


def machine() -> dict:
    import torch

    from c2f.tuning import cpu_model

    return {
        "cpu": cpu_model(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "ATEN_CPU_CAPABILITY": os.environ.get("ATEN_CPU_CAPABILITY", "-"),
        "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA", "-"),
        "C2F_CPU_BF16": os.environ.get("C2F_CPU_BF16", "-"),
        "threads": ARGS.threads,
    }


def fine_times(index: ClipIndex, queries: np.ndarray, hits: list) -> list[float]:
    from c2f.search.localizer import localize_curve

    times = []
    for q, hs in zip(queries, hits, strict=True):
        t = time.perf_counter()
        for h in hs:
            localize_curve(index.clip_scores(q, h.video_key), max_spans=3)
        times.append(time.perf_counter() - t)
    return times


def text_encode_times(count: int) -> list[float]:
    import torch

    from c2f.encoders import create_clip_encoder
    from c2f.features import get_preset

    torch.set_num_threads(ARGS.threads)
    settings = replace(get_preset("clip-only"), clip_weights="random")
    encoder = create_clip_encoder(settings)
    encoder.encode_text(["warm up"])
    times = []
    for i in range(count):
        t = time.perf_counter()
        encoder.encode_text([f"a person opens the door and walks into the kitchen {i}"])
        times.append(time.perf_counter() - t)
    return times


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_size(n: int, args: argparse.Namespace, text_ms: list[float]) -> dict:
    k = 10
    storage = args.storage if args.storage != "auto" else ("float16" if n >= 50_000 else "float32")
    rss0 = rss_mb()
    index, build_s, samples = build(n, correlated_videos, storage, args, args.seed + n)
    rss_index = rss_mb() - rss0
    rng = np.random.default_rng(args.seed + 1)
    queries = make_queries(index, rng, args.queries, args.query_cosine)

    index.kind = "auto"  # what the library would use at this size
    approximate = index.use_approximate()
    t = time.perf_counter()
    coarse, hits, brute = timed_searches(index, queries, k, args.bruteforce_queries)
    first_search_s = time.perf_counter() - t - sum(coarse) - sum(brute)
    recall = measure_recall(index, queries, k) if approximate else 1.0
    fine = fine_times(index, queries, hits)
    end_to_end = [
        c + f + text_ms[i % len(text_ms)] for i, (c, f) in enumerate(zip(coarse, fine, strict=True))
    ]
    if not approximate:  # the exact search must agree with the reference
        for q, hs in zip(queries[: args.bruteforce_queries], hits, strict=False):
            assert agrees_with_brute_force(index, q, hs, k), "exact search disagrees with brute force"
    choice = index.scan_choice
    p50, bp50 = statistics.median(coarse) * 1e3, statistics.median(brute) * 1e3
    mem = index.memory_bytes()
    out = {
        "p50_ms": round(p50, 2),
        "p95_ms": percentile_ms(coarse, 95),
        "bruteforce_p50_ms": round(bp50, 2),
        "speedup_vs_bruteforce": round(bp50 / p50, 2),
        "recall_at_10": round(recall, 4),
        "index_kind": "approximate (PQ fast scan, exact rescoring)"
        if approximate
        else f"exact (certified {index.scan_precision} scan)",
        "scan_precision": index.scan_precision,
        "scan_choice": {"source": choice.source, "sample_timings_ms": choice.timings_ms} if choice else None,
        "storage": storage,
        "build_s": round(build_s, 2),
        "approximate_index_build_s": round(first_search_s, 2) if approximate else 0.0,
        "memory_per_video_kb": round(sum(mem.values()) / n / 1024, 1),
        "memory_parts_mb": {name: round(b / 2**20, 1) for name, b in mem.items()},
        "rss_growth_mb": round(rss_index, 1),
        "coarse_p50_ms": round(p50, 2),
        "fine_p50_ms": percentile_ms(fine, 50),
        "text_p50_ms": percentile_ms(text_ms, 50),
        "end_to_end_p50_ms": percentile_ms(end_to_end, 50),
        "end_to_end_p95_ms": percentile_ms(end_to_end, 95),
        "data": data_stats(samples),
    }
    if approximate:  # the exact search on the same library, for reference
        index.kind = "exact"
        exact_times, _, _ = timed_searches(index, queries[:10], k)
        out["exact_p50_ms"] = percentile_ms(exact_times, 50)
    else:
        out["scan_candidates"] = scan_candidates(index, queries[: args.scan_queries], k)
    del index
    if n <= args.iid_max_size:
        index, _, samples = build(n, iid_videos, storage, args, args.seed + n + 7)
        queries = make_queries(index, rng, min(args.queries, 20), args.query_cosine)
        times, _, brute = timed_searches(index, queries, k, args.bruteforce_queries)
        out["iid"] = {
            "scan_precision": index.scan_precision,
            "p50_ms": percentile_ms(times, 50),
            "bruteforce_p50_ms": percentile_ms(brute, 50),
            "speedup_vs_bruteforce": round(statistics.median(brute) / statistics.median(times), 2),
            "data": data_stats(samples),
        }
    return out


def main() -> None:
    import faiss

    faiss.omp_set_num_threads(ARGS.threads)
    text_ms = text_encode_times(ARGS.text_queries or ARGS.queries)
    result: dict = {"machine": machine(), "args": vars(ARGS)}
    for n in (int(s) for s in ARGS.sizes.split(",")):
        result[str(n)] = bench_size(n, ARGS, text_ms)
        print(f"{n}: {json.dumps(result[str(n)])}", file=sys.stderr, flush=True)
    print(json.dumps(result, indent=1))
    if ARGS.out:
        Path(ARGS.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

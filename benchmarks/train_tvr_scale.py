"""Training cost at TVR scale: steps/s and peak memory of `c2f train --config paper` on this machine,
and the FLOPs of one epoch (87k train queries), counted by torch's FlopCounterMode on TVR-shaped
batches (no TVR files needed: random vectors of the real sizes).

TVR shapes assumed (stated in the output): 51 clips per video (76.2 s mean duration / 1.5 s),
1536-d value features, 20 subtitle lines of 12 CLIP tokens per video, queries of 17 tokens
(13.4 words + start/end), 512-d CLIP text tokens. Each query of a batch brings its own video
(87k queries over ~17k videos: ~5 per video, rarely two in one batch of 32).
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from c2f.data.tvr import TVRQuery
from c2f.model import C2FModel, get_config
from c2f.model.c2f import VideoInput
from c2f.model.inference import Corpus
from c2f.train import TrainSettings, train_model

SHAPES = {"clips": 51, "sub_lines": 20, "sub_tokens": 12, "query_tokens": 17, "video_dim": 1536, "token_dim": 512}
TVR_TRAIN_QUERIES = 87_175  # TVR train split


def tvr_shaped(num_videos: int, seed: int = 0) -> tuple[Corpus, list[TVRQuery], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    n, lines, lt = SHAPES["clips"], SHAPES["sub_lines"], SHAPES["sub_tokens"]
    videos, names = [], []
    for v in range(num_videos):
        bounds = np.linspace(0, n, lines + 1).astype(int)
        segs = [
            (np.arange(a, b), rng.standard_normal((lt, SHAPES["token_dim"])).astype(np.float32))
            for a, b in itertools.pairwise(bounds)
        ]
        videos.append(VideoInput(rng.standard_normal((n, SHAPES["video_dim"])).astype(np.float32), segs))
        names.append(f"v{v}")
    corpus = Corpus(names, videos, [n * 1.5] * num_videos)
    queries = [TVRQuery(i, "q", f"v{i}", n * 1.5, (15.0, 24.0)) for i in range(num_videos)]
    tokens = [rng.standard_normal((SHAPES["query_tokens"], SHAPES["token_dim"])).astype(np.float32)] * num_videos
    return corpus, queries, tokens


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.manual_seed(0)
    cfg = get_config("paper", video_dim=SHAPES["video_dim"], token_dim=SHAPES["token_dim"])
    corpus, queries, tokens = tvr_shaped(args.batch_size * (args.steps + 1))
    settings = TrainSettings(
        steps=1, batch_size=args.batch_size, eval_every=10**9, warmup=1, device=args.device
    )
    # FLOPs of one optimizer step (forward + backward + AdamW), per query
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        train_model(cfg, corpus, queries, tokens, [], [], settings, progress=False)
    flops_per_query = counter.get_total_flops() / args.batch_size
    # steps/s (after one warm-up step), peak resident memory
    t0 = time.perf_counter()
    timed = TrainSettings(**{**settings.__dict__, "steps": args.steps})
    train_model(cfg, corpus, queries, tokens, [], [], timed, progress=False)
    secs = time.perf_counter() - t0
    n_params = sum(p.numel() for p in C2FModel(cfg).parameters())
    out = {
        "device": args.device,
        "threads": torch.get_num_threads(),
        "config": "paper",
        "parameters": n_params,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "steps_per_s": round(args.steps / secs, 3),
        "queries_per_s": round(args.steps * args.batch_size / secs, 2),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "gflop_per_query_train": round(flops_per_query / 1e9, 1),
        "pflop_per_epoch": round(flops_per_query * TVR_TRAIN_QUERIES / 1e15, 2),
        "epoch_queries": TVR_TRAIN_QUERIES,
        "shapes": SHAPES,
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

"""Paper Table 3 on the synthetic VCMR benchmark: Base vs +Fusion vs +Aug vs +PT, same data and seeds.

Prints (and with --out writes, after every run, resumable) one JSON object keyed by variant with the
mean over seeds of the VCMR / SVMR / VR metrics (validation split, exact TVR evaluator), the
per-seed values, and the provenance of the code measured (benchmarks/provenance.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from provenance import add_run, provenance  # first: puts this checkout on sys.path

from c2f.data.synthetic import make_synthetic, subtitled_inputs
from c2f.model import get_config
from c2f.train import TrainSettings, train_model
from c2f.train.pretrain import PretrainSettings, pretrain_model

# A variant: model config overrides, TrainSettings overrides, and whether it pre-trains first.
# Table 3's rows take the recipe's defaults (C2FConfig, TrainSettings); the other Fusion rows are
# the Eq. 10 variants the curves compare (benchmarks/ablation_curves.py).
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any], bool]] = {
    "base": ({"localizer": "base"}, {}, False),
    "fusion": ({"localizer": "fusion"}, {}, False),
    "fusion+aug": ({"localizer": "fusion", "augment": True}, {}, False),
    "fusion+aug+pt": ({"localizer": "fusion", "augment": True}, {}, True),
    "fusion-l1": ({"localizer": "fusion", "highlight_loss": "l1"}, {}, False),
    "fusion-bce": ({"localizer": "fusion", "highlight_loss": "bce"}, {}, False),
    "fusion-l1-balanced": ({"localizer": "fusion", "highlight_loss": "l1-balanced"}, {}, False),
    "fusion-l1-open": ({"localizer": "fusion", "highlight_loss": "l1", "gate_bias": 2.0}, {}, False),
    "fusion-l1-warmup": ({"localizer": "fusion", "highlight_loss": "l1"}, {"highlight_warmup": 500}, False),
}
TABLE3 = ["base", "fusion", "fusion+aug", "fusion+aug+pt"]
# Below this budget the curves (benchmarks/ablation_curves.py) show Fusion still at its start while
# Base already localizes from the similarity curve; the measured comparisons (1000 steps) are above it.
MIN_FAIR_STEPS = 1000
KEYS = {
    "VCMR": ["0.5-r1", "0.7-r1", "0.7-r5", "0.7-r10"],
    "SVMR": ["0.5-r1", "0.7-r1", "0.7-r5"],
    "VR": ["r1", "r5", "r10"],
}


def train_variant(variant: str, seed: int, args, eval_every: int | None = None) -> tuple[dict, list[dict]]:
    """(best validation metrics (the KEYS columns), history: one {"step", "loss", "metrics"} per
    evaluation) of one variant and seed; data and training draw from `seed`."""
    model_overrides, train_overrides, pt = VARIANTS[variant]
    data = make_synthetic(
        num_videos=args.videos, num_concepts=20, seed=seed, extra_videos=args.pt_videos if pt else 0
    )
    corpus = data.corpus()
    cfg = get_config(args.config, video_dim=data.video_dim, token_dim=data.token_dim, **model_overrides)
    settings = TrainSettings(
        **{
            "steps": args.steps,
            "batch_size": 32,
            "lr": args.lr,
            "warmup": 30,
            "eval_every": eval_every or args.steps // 2,
            "hard_negative_after": args.steps // 2,
            "seed": seed,
            **train_overrides,
        }
    )
    init = None
    if pt:  # HERO's four tasks on the unannotated extra videos (with subtitles), then fine-tune from them
        init = Path(tempfile.mkdtemp(prefix="c2f-pt-"))
        pretrain_model(
            cfg,
            subtitled_inputs(data),
            PretrainSettings(steps=args.pt_steps, lr=args.lr, seed=seed),
            out_dir=init,
            data_note="ablation",
            progress=False,
        )
    res = train_model(
        cfg,
        corpus,
        data.train,
        [data.tokens(q.desc) for q in data.train],
        data.val,
        [data.tokens(q.desc) for q in data.val],
        settings,
        progress=False,
        init_checkpoint=init,
    )
    best = {t: {k: res.best_metrics[t][k] for k in KEYS[t]} for t in KEYS}
    return best, res.history


def summarize(runs: list[dict]) -> dict:
    """Mean over seeds of every KEYS column, and the lowest and highest seed."""
    out: dict = {}
    for t in KEYS:
        out[t] = {}
        for k in KEYS[t]:
            values = [r["best"][t][k] for r in runs]
            out[t][k] = {"mean": round(float(np.mean(values)), 2), "min": min(values), "max": max(values)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--steps", type=int, default=MIN_FAIR_STEPS)
    ap.add_argument("--videos", type=int, default=400)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--variants", default=",".join(TABLE3), help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--pt-videos", type=int, default=600, help="unannotated videos with subtitles for +pt")
    ap.add_argument("--pt-steps", type=int, default=600)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--out", help="results JSON, one run added as each ends; runs already in it are not run again")
    args = ap.parse_args()
    measured = provenance()  # the code this process imported, whatever is edited while it runs
    if args.steps < MIN_FAIR_STEPS:
        print(
            f"warning: {args.steps} steps is a budget where Fusion has not started to learn yet "
            f"(BENCHMARKS.md, curves): the comparison says which localizer starts faster, not which is better",
            file=sys.stderr,
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        sys.exit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    setup = {
        "videos": args.videos,
        "steps": args.steps,
        "config": args.config,
        "lr": args.lr,
        "pt_videos": args.pt_videos,
        "pt_steps": args.pt_steps,
    }

    def measured_runs() -> list[dict]:  # re-read: another process may be measuring into the same file
        if not (args.out and Path(args.out).is_file()):
            return runs
        stored = json.loads(Path(args.out).read_text())["runs"]
        other = {json.dumps(r["setup"], sort_keys=True) for r in stored if r["setup"] != setup}
        if other:
            sys.exit(f"{args.out} holds runs of another setup ({', '.join(sorted(other))}): give another --out")
        return stored

    runs: list[dict] = []
    for variant in variants:
        for seed in seeds:
            if any(r["variant"] == variant and r["seed"] == seed for r in measured_runs()):
                continue
            t0 = time.perf_counter()
            best, _ = train_variant(variant, seed, args)
            run = {
                "variant": variant,
                "seed": seed,
                "setup": setup,
                "best": best,
                "seconds": round(time.perf_counter() - t0, 1),
                "threads": torch.get_num_threads(),
                "provenance": measured,
            }
            runs.append(run)
            if args.out:
                add_run(args.out, run)
            print(f"{variant} seed {seed}: {run['seconds']} s", file=sys.stderr, flush=True)
    runs = measured_runs()
    out = {
        "setup": {**setup, "seeds": seeds},
        "summary": {v: summarize([r for r in runs if r["variant"] == v and r["seed"] in seeds]) for v in variants},
    }
    if args.out:  # the summary of what the file holds for this setup, beside its runs
        add_run(args.out, None, out)
    json.dump(out["summary"], sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()

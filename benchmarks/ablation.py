"""Paper Table 3 on the synthetic VCMR benchmark: Base vs +Fusion vs +Aug vs +PT, same data and seeds.

Prints (and with --out writes, after every run, resumable) one JSON object: for the checkpoint that
validation selects ("best") and for the end of the budget ("last"), per variant, the mean over seeds
of the VCMR / SVMR / VR metrics (validation split, exact TVR evaluator) with the lowest and highest
seed; --out also keeps each run with the provenance of the code measured (benchmarks/provenance.py).
Each seed's VCMR and SVMR 0.7-R@1 go to stderr.
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
# The default budget. The curves (benchmarks/ablation_curves.py, 400 videos, 4 seeds) flatten by
# ~2000-3000 steps, and on a 3000-step schedule Fusion stays above Base from step <= 600 on every
# seed; on a 1000-step schedule (the learning rate decays 3x sooner) seed 3's VCMR 0.7-R@1 was
# 3.75 for Fusion against 4.38 for Base (BENCHMARKS.md): below this, the table says which localizer
# starts faster rather than which is better.
MIN_FAIR_STEPS = 3000
KEYS = {
    "VCMR": ["0.5-r1", "0.7-r1", "0.7-r5", "0.7-r10"],
    "SVMR": ["0.5-r1", "0.7-r1", "0.7-r5"],
    "VR": ["r1", "r5", "r10"],
}


def train_variant(variant: str, seed: int, args, eval_every: int | None = None) -> tuple[dict, list[dict]]:
    """(best validation metrics (the KEYS columns), history: one {"step", "loss", "metrics"} per
    evaluation) of one variant and seed; data and training draw from `seed` (evaluating draws from
    neither generator, so `eval_every` does not change the trained weights)."""
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
    return columns(res.best_metrics), res.history


def columns(metrics: dict) -> dict:
    """The KEYS columns of a validation result."""
    return {t: {k: metrics[t][k] for k in KEYS[t]} for t in KEYS}


def summarize(runs: list[dict], which: str = "best") -> dict:
    """Mean over seeds of every KEYS column of each run's `which` metrics ("best": the checkpoint
    validation selects; "last": the end of the budget), and the lowest and highest seed."""
    out: dict = {}
    for t in KEYS:
        out[t] = {}
        for k in KEYS[t]:
            values = [r[which][t][k] for r in runs if which in r]
            if values:
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
            best, history = train_variant(variant, seed, args)
            run = {
                "variant": variant,
                "seed": seed,
                "setup": setup,
                "best": best,
                "last": columns(history[-1]["metrics"]),
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
        "summary": {
            which: {v: summarize([r for r in runs if r["variant"] == v and r["seed"] in seeds], which) for v in variants}
            for which in ("best", "last")
        },
    }
    shown = [r for r in runs if r["variant"] in variants and r["seed"] in seeds]
    for r in sorted(shown, key=lambda r: (r["seed"], variants.index(r["variant"]))):  # a claim holds per seed
        b = r["best"]
        print(
            f"seed {r['seed']} {r['variant']:>14}: VCMR 0.7-R@1 {b['VCMR']['0.7-r1']:5.2f}  "
            f"SVMR 0.7-R@1 {b['SVMR']['0.7-r1']:5.2f}",
            file=sys.stderr,
        )
    if args.out:  # the summary of what the file holds for this setup, beside its runs
        add_run(args.out, None, out)
    json.dump(out["summary"], sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()

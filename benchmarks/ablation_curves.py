"""Learning curves of the ablation's variants (metric vs training step) on the synthetic VCMR
benchmark: several seeds and corpus sizes, one run at a time, each run appended to --out as soon as
it ends (an interrupted measurement resumes where it stopped: runs already there are skipped).

Each run is the ablation's recipe (benchmarks/ablation.py: tiny config, batch 32, --lr, 30 warm-up
steps, linear decay over --steps, hard negatives from half the budget), evaluated every
--eval-every steps on the validation videos. The PNG (--png): mean over seeds with the min-max
band, one column per corpus size, one row per metric. The printed summary gives, per variant,
corpus size and seed, the step from which the variant stays above Base (VCMR and SVMR 0.7-R@1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from ablation import VARIANTS, train_variant  # benchmarks/ is not a package
from provenance import add_run, provenance

METRICS = [("VCMR", "0.7-r1"), ("SVMR", "0.7-r1"), ("VR", "r1")]
COLOURS = {
    "base": "tab:blue",
    "fusion": "tab:red",
    "fusion-l1": "tab:orange",
    "fusion-bce": "tab:green",
    "fusion-l1-balanced": "tab:red",
    "fusion-l1-open": "tab:purple",
    "fusion-l1-warmup": "tab:brown",
}


def run_key(r: dict) -> tuple:
    return (r["videos"], r["variant"], r["seed"], r["steps"][-1], r["eval_every"], r["lr"], r["config"])


def curves(args) -> dict:
    measured = provenance()  # the code this process imported, whatever is edited while it runs
    def measured_runs() -> dict:  # re-read: another process may be measuring into the same file
        return json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {"runs": []}

    out = measured_runs()
    for seed in args.seeds:  # a seed at a time: partial results cover every size and variant
        for size in args.sizes:
            for variant in args.variants:
                key = (size, variant, seed, args.steps, args.eval_every, args.lr, args.config)
                if key in {run_key(r) for r in measured_runs()["runs"]}:
                    continue
                t0 = time.perf_counter()
                run_args = argparse.Namespace(
                    videos=size, steps=args.steps, config=args.config, lr=args.lr, pt_videos=0, pt_steps=0
                )
                _, history = train_variant(variant, seed, run_args, eval_every=args.eval_every)
                seconds = round(time.perf_counter() - t0, 1)
                out = add_run(
                    args.out,
                    {
                        "videos": size,
                        "variant": variant,
                        "seed": seed,
                        "lr": args.lr,
                        "config": args.config,
                        "eval_every": args.eval_every,
                        "seconds": seconds,
                        "steps": [h["step"] for h in history],
                        "loss": [h["loss"] for h in history],
                        **{f"{t} {k}": [h["metrics"][t][k] for h in history] for t, k in METRICS},
                        "threads": torch.get_num_threads(),
                        "provenance": measured,
                    },
                )
                print(f"{size} videos {variant} seed {seed}: {seconds} s", file=sys.stderr, flush=True)
    return out


def selected(result: dict, args) -> list[dict]:
    """The runs of --sizes, --variants, --seeds, --steps, --eval-every and --lr."""
    return [
        r
        for r in result["runs"]
        if r["videos"] in args.sizes
        and r["variant"] in args.variants
        and r["seed"] in args.seeds
        and r["steps"][-1] == args.steps
        and r["eval_every"] == args.eval_every
        and r["lr"] == args.lr
        and r["config"] == args.config
    ]


def stays_above_from(mine: list[float], base: list[float], steps: list[int]) -> int | None:
    """The first evaluation step from which `mine` > `base` at every later evaluation (None: never)."""
    first = None
    for s, m, b in zip(steps, mine, base, strict=True):
        if m > b:
            first = s if first is None else first
        else:
            first = None
    return first


def overtakes(runs: list[dict]) -> list[dict]:
    """Per variant, corpus size and seed: where it stays above Base (VCMR, SVMR 0.7-R@1), and its
    last and best values next to Base's."""
    base = {(r["videos"], r["seed"]): r for r in runs if r["variant"] == "base"}
    rows = []
    for r in runs:
        b = base.get((r["videos"], r["seed"]))
        if r["variant"] == "base" or b is None:
            continue
        row = {"videos": r["videos"], "variant": r["variant"], "seed": r["seed"]}
        for task in ("VCMR", "SVMR"):
            mine, theirs = r[f"{task} 0.7-r1"], b[f"{task} 0.7-r1"]
            row[f"{task} above base from"] = stays_above_from(mine, theirs, r["steps"])
            row[f"{task} last / base"] = (mine[-1], theirs[-1])
            row[f"{task} best / base"] = (max(mine), max(theirs))
        rows.append(row)
    return rows


def plot(runs: list[dict], sizes: list[int], variants: list[str], png: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(METRICS), len(sizes), figsize=(4.6 * len(sizes), 2.9 * len(METRICS)), squeeze=False)
    for col, size in enumerate(sizes):
        for row, (task, key) in enumerate(METRICS):
            ax = axes[row][col]
            for variant in variants:
                mine = [r for r in runs if r["videos"] == size and r["variant"] == variant]
                if not mine:
                    continue
                steps = mine[0]["steps"]
                values = np.array([r[f"{task} {key}"] for r in mine])  # (seeds, evals)
                colour = COLOURS.get(variant)
                ax.plot(steps, values.mean(0), color=colour, label=f"{variant} ({len(mine)} seeds)")
                ax.fill_between(steps, values.min(0), values.max(0), color=colour, alpha=0.15)
            ax.set_title(f"{size} videos: {task} {key}", fontsize=9)
            ax.set_xlabel("training step", fontsize=8)
            ax.set_ylabel("%", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    for ax in axes[0]:  # a column per corpus size, each with the variants it ran
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="100,400", help="corpus sizes (videos), comma-separated")
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--variants", default="base,fusion-l1,fusion-bce,fusion-l1-balanced")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--out", default="benchmarks/results_ablation_curves.json")
    ap.add_argument("--png", default="benchmarks/ablation_curves.png")
    ap.add_argument("--plot-only", action="store_true", help="redraw the PNG and the summary from --out")
    args = ap.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.variants = args.variants.split(",")
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        sys.exit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    result = json.loads(Path(args.out).read_text()) if args.plot_only else curves(args)
    runs = selected(result, args)
    if args.png:
        plot(runs, args.sizes, args.variants, args.png)
    for row in overtakes(runs):
        print(json.dumps(row))


if __name__ == "__main__":
    main()

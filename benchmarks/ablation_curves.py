"""Is the Fusion gain robust? Validation curves (metric vs training step) of Base and Fusion on the
synthetic VCMR benchmark, several seeds and corpus sizes, in one process, seeds one after another.

Writes the raw curves as JSON (--out) and a PNG (--png): mean over seeds with the min-max band, one
column per corpus size, one row per metric. Each run is the ablation's recipe (benchmarks/ablation.py:
tiny config, batch 32, lr 1e-3, 30 warm-up steps, linear decay over --steps, hard negatives from
half the budget), evaluated every --eval-every steps on the validation videos.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ablation import train_variant  # benchmarks/ is not a package

METRICS = [("VCMR", "0.7-r1"), ("SVMR", "0.7-r1"), ("VR", "r1")]


def curves(args) -> dict:
    out: dict = {
        "setup": {
            "sizes": args.sizes,
            "steps": args.steps,
            "eval_every": args.eval_every,
            "seeds": args.seeds,
            "config": args.config,
            "threads": torch.get_num_threads(),
        },
        "runs": [],
    }
    for seed in args.seeds:  # a seed at a time: partial results cover every size and variant
        for size in args.sizes:
            for variant in args.variants:
                t0 = time.perf_counter()
                run_args = argparse.Namespace(
                    videos=size, steps=args.steps, config=args.config, lr=args.lr, pt_videos=0, pt_steps=0
                )
                _, history = train_variant(variant, seed, run_args, eval_every=args.eval_every)
                seconds = round(time.perf_counter() - t0, 1)
                out["runs"].append(
                    {
                        "videos": size,
                        "variant": variant,
                        "seed": seed,
                        "seconds": seconds,
                        "steps": [h["step"] for h in history],
                        "loss": [h["loss"] for h in history],
                        **{f"{t} {k}": [h["metrics"][t][k] for h in history] for t, k in METRICS},
                    }
                )
                print(f"{size} videos {variant} seed {seed}: {seconds} s", file=sys.stderr, flush=True)
                if args.out:  # partial results survive an interrupted run
                    Path(args.out).write_text(json.dumps(out, indent=1))
    return out


def plot(result: dict, png: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = result["setup"]["sizes"]
    fig, axes = plt.subplots(len(METRICS), len(sizes), figsize=(4.2 * len(sizes), 2.8 * len(METRICS)), squeeze=False)
    colours = {"base": "tab:blue", "fusion": "tab:red"}
    for col, size in enumerate(sizes):
        for row, (task, key) in enumerate(METRICS):
            ax = axes[row][col]
            for variant, colour in colours.items():
                runs = [r for r in result["runs"] if r["videos"] == size and r["variant"] == variant]
                if not runs:
                    continue
                steps = runs[0]["steps"]
                values = np.array([r[f"{task} {key}"] for r in runs])  # (seeds, evals)
                ax.plot(steps, values.mean(0), color=colour, label=f"{variant} (mean of {len(runs)} seeds)")
                ax.fill_between(steps, values.min(0), values.max(0), color=colour, alpha=0.2)
            where = size if isinstance(size, str) else f"{size} videos"  # merged results label their budget
            ax.set_title(f"{where}: {task} {key}", fontsize=9)
            ax.set_xlabel("training step", fontsize=8)
            ax.set_ylabel("%", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="100,200", help="corpus sizes (videos), comma-separated")
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--variants", default="base,fusion")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--out", default="benchmarks/results_ablation_curves.json")
    ap.add_argument("--png", default="benchmarks/ablation_curves.png")
    ap.add_argument("--plot-only", action="store_true", help="redraw the PNG from --out")
    args = ap.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.variants = args.variants.split(",")
    result = json.loads(Path(args.out).read_text()) if args.plot_only else curves(args)
    plot(result, args.png)


if __name__ == "__main__":
    main()

"""`c2f evaluate`: TVR metrics (VCMR/SVMR/VR R@K at IoU 0.5/0.7, by type, AveR) of a prediction file,
or of a C2F checkpoint run on a feature folder (which writes the prediction file first, through
c2f.eval.predict: the prediction path the learned search backend and the demo's error analysis share)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="TVR metrics of a prediction file (or of a checkpoint on features)")
    p.add_argument("--annotations", required=True, help="TVR-format ground truth (.jsonl)")
    p.add_argument("--predictions", help="TVR prediction file (.json) to score")
    p.add_argument("--checkpoint", help="C2F checkpoint folder: predict with it first (needs --features)")
    p.add_argument("--features", help="folder of feature files (<vid_name>.safetensors) for --checkpoint")
    p.add_argument("--write-predictions", help="where --checkpoint writes its TVR prediction file")
    p.add_argument(
        "--top-k-videos", type=int, default=100, help="videos the coarse stage keeps (--checkpoint; default 100, as the official R@100 needs)"
    )
    p.add_argument("--device", default=None)
    p.add_argument("--out", help="also write the metrics JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from c2f.data.tvr import load_annotations
    from c2f.errors import C2FError
    from c2f.eval.metrics import compute_metrics
    from c2f.eval.predictions import read_predictions, write_predictions

    if bool(args.predictions) == bool(args.checkpoint):
        raise C2FError("give either --predictions P.json or --checkpoint CKPT --features DIR")
    gt = load_annotations(args.annotations)
    if args.checkpoint:
        if not args.features:
            raise C2FError("--checkpoint needs --features DIR (the feature files of the annotated videos)")
        from c2f.eval.predict import predict_from_checkpoint

        preds = predict_from_checkpoint(
            args.checkpoint, gt, args.features, top_k_videos=args.top_k_videos, device=args.device
        )
        if args.write_predictions:
            write_predictions(preds, args.write_predictions)
    else:
        preds = read_predictions(args.predictions)
    metrics = compute_metrics(preds, gt)
    text = json.dumps(metrics, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0

"""`c2f train`: train a C2F model on TVR-format annotations + feature files, or on the synthetic benchmark."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a C2F model (TVR-format data, or --synthetic)")
    p.add_argument("--train", help="training annotations (.jsonl)")
    p.add_argument("--val", help="validation annotations (.jsonl)")
    p.add_argument("--features", help="folder of <vid_name>.safetensors feature files")
    p.add_argument("--synthetic", action="store_true", help="train on the built-in synthetic VCMR benchmark")
    p.add_argument("--synthetic-videos", type=int, default=400)
    p.add_argument("--out", required=True, help="output folder (best/ and last/ checkpoints, resume state)")
    p.add_argument("--config", default="small", help="model preset: paper, small, tiny")
    p.add_argument("--localizer", choices=["base", "fusion"], default="fusion")
    p.add_argument("--aug", action="store_true", help="paper 2.4 data augmentation")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--resume", action="store_true", help="continue from --out/resume.safetensors")
    p.add_argument(
        "--init", help="start from a pre-trained checkpoint (`c2f pretrain`); recorded in the new one"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from c2f.data.dataset import corpus_from_feature_dir, text_token_encoder
    from c2f.data.synthetic import make_synthetic
    from c2f.data.tvr import load_annotations
    from c2f.errors import C2FError
    from c2f.model import get_config
    from c2f.train import TrainSettings, train_model

    settings = TrainSettings(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        eval_every=args.eval_every,
        seed=args.seed,
        device=args.device,
        warmup=min(500, args.steps // 10),
        hard_negative_after=args.steps // 2,
    )
    if args.synthetic:
        data = make_synthetic(num_videos=args.synthetic_videos, num_concepts=20, seed=args.seed)
        corpus = data.corpus()
        text_spec = {"kind": "words", "vectors": {w: v.tolist() for w, v in data.word_vectors.items()}}
        cfg = get_config(
            args.config,
            video_dim=data.video_dim,
            token_dim=data.token_dim,
            localizer=args.localizer,
            augment=args.aug,
        )
        train_q, val_q, feature_settings = data.train, data.val, None
    else:
        if not (args.train and args.features):
            raise C2FError("give --train ANN.jsonl --features DIR (and --val), or --synthetic")
        from c2f.features import load_features

        first = next(iter(sorted(Path(args.features).glob("*.safetensors"))), None)
        if first is None:
            raise C2FError(f"no feature files in {args.features}")
        fs = load_features(first).settings
        text_spec = {"kind": "clip", "arch": fs.clip_model, "weights": fs.clip_weights}
        encode = text_token_encoder(text_spec, fs, args.device)
        probe = encode(["a"])[0]
        cfg = get_config(
            args.config,
            video_dim=load_features(first).dim,
            token_dim=probe.shape[1],
            localizer=args.localizer,
            augment=args.aug,
        )
        meta = {"feature_settings": fs.to_dict()}
        corpus, feature_settings = corpus_from_feature_dir(args.features, meta, cfg, encode)
        durations = dict(zip(corpus.names, corpus.durations, strict=True))
        train_q = load_annotations(args.train, known_videos=durations)
        val_q = load_annotations(args.val, known_videos=durations) if args.val else []

    def tokens(qs):
        if args.synthetic:
            return [data.tokens(q.desc) for q in qs]
        return encode([q.desc for q in qs])

    result = train_model(
        cfg,
        corpus,
        train_q,
        tokens(train_q),
        val_q,
        tokens(val_q),
        settings,
        out_dir=args.out,
        feature_settings=feature_settings,
        text_encoder=text_spec,
        resume=args.resume,
        init_checkpoint=args.init,
    )
    print(json.dumps({"best_val": result.best_metrics, "checkpoint": f"{args.out}/best"}, indent=1))
    return 0

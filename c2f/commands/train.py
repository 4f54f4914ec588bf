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
    p.add_argument(
        "--val-features",
        help="videos validation searches (default: --features); TVR's protocol: the val split's videos only",
    )
    p.add_argument("--synthetic", action="store_true", help="train on the built-in synthetic VCMR benchmark")
    p.add_argument("--synthetic-videos", type=int, default=400)
    p.add_argument("--out", required=True, help="output folder (best/ and last/ checkpoints, resume state)")
    p.add_argument(
        "--config",
        default="small",
        help="model preset: paper, small, tiny (paper also sets HERO's TVR training values, see "
        "c2f/model/config.py; the options below override them)",
    )
    p.add_argument("--localizer", choices=["base", "fusion"], default="fusion")
    p.add_argument(
        "--highlight-loss",
        choices=["l1-balanced", "l1", "bce"],  # c2f.model.config.HIGHLIGHT_LOSSES (not imported: torch)
        default=None,
        help="Eq. 10's importance loss: l1-balanced (default: the paper's L1, inside and outside clips "
        "weighing half each), l1 (the paper as written: its gate shuts early, Fusion can stall below "
        "Base) or bce (VSLNet's weighted cross-entropy); BENCHMARKS.md has the curves",
    )
    p.add_argument("--aug", action="store_true", help="paper 2.4 data augmentation")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default 2000; paper 5000)")
    p.add_argument("--batch-size", type=int, default=None, help="queries per micro-batch (default 32)")
    p.add_argument(
        "--grad-accum", type=int, default=None, help="micro-batches per step (default 1; paper 16)"
    )
    p.add_argument("--lr", type=float, default=None, help="default 1e-4")
    p.add_argument("--eval-every", type=int, default=None, help="default 500; paper 200")
    p.add_argument(
        "--val-top-k",
        type=int,
        default=None,
        help="videos localized per validation query (default 10; c2f evaluate uses the official 100)",
    )
    p.add_argument("--seed", type=int, default=None, help="default 0; paper 77")
    p.add_argument(
        "--text-encoder",
        default=None,
        metavar="ARCH:WEIGHTS",
        help="open_clip text tower for queries and subtitles (default: the features' CLIP)",
    )
    p.add_argument("--device", default=None)
    p.add_argument("--resume", action="store_true", help="continue from --out/resume.safetensors")
    p.add_argument(
        "--init", help="start from a pre-trained checkpoint (`c2f pretrain`); recorded in the new one"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from c2f.data.dataset import text_token_encoder
    from c2f.data.synthetic import make_synthetic
    from c2f.data.tvr import load_annotations
    from c2f.errors import C2FError
    from c2f.model import get_config
    from c2f.model.config import C2FConfig, training_preset
    from c2f.train import TrainSettings, train_model

    defaults = {
        "steps": 2000,
        "batch_size": 32,
        "grad_accum": 1,
        "lr": 1e-4,
        "eval_every": 500,
        "val_top_k": 10,
        "seed": 0,
    }
    highlight_loss = args.highlight_loss or C2FConfig.highlight_loss
    chosen = {**defaults, **training_preset(args.config)}
    for key in defaults:
        if getattr(args, key) is not None:
            chosen[key] = getattr(args, key)
    steps = chosen["steps"]  # a shorter run keeps warm-up and hard negatives inside it
    chosen["warmup"] = min(chosen.get("warmup", 500), max(1, steps // 10))
    chosen["hard_negative_after"] = min(chosen.get("hard_negative_after", steps // 2), steps // 2)
    settings = TrainSettings(**chosen, device=args.device)
    if args.synthetic:
        data = make_synthetic(num_videos=args.synthetic_videos, num_concepts=20, seed=settings.seed)
        corpus = data.corpus()
        text_spec = {"kind": "words", "vectors": {w: v.tolist() for w, v in data.word_vectors.items()}}
        cfg = get_config(
            args.config,
            video_dim=data.video_dim,
            token_dim=data.token_dim,
            localizer=args.localizer,
            augment=args.aug,
            highlight_loss=highlight_loss,
        )
        train_q, val_q, feature_settings = data.train, data.val, None
    else:
        if not (args.train and args.features):
            raise C2FError("give --train ANN.jsonl --features DIR (and --val), or --synthetic")
        from c2f.data.packed import pack_features, packed_query_tokens
        from c2f.features import load_features

        first = next(iter(sorted(Path(args.features).glob("*.safetensors"))), None)
        if first is None:
            raise C2FError(f"no feature files in {args.features}")
        head = load_features(first)
        fs = head.settings
        arch, _, weights = (args.text_encoder or f"{fs.clip_model}:{fs.clip_weights}").partition(":")
        text_spec = {"kind": "clip", "arch": arch, "weights": weights}
        encode = text_token_encoder(text_spec, fs, args.device)
        probe = encode(["a"])[0]
        cfg = get_config(
            args.config,
            video_dim=head.dim,
            token_dim=probe.shape[1],
            localizer=args.localizer,
            augment=args.aug,
            highlight_loss=highlight_loss,
        )
        # every file once into memory-mapped arrays (subtitle tokens included), cached beside them
        pack = pack_features(args.features, fs, encode, text_spec)
        corpus, feature_settings = pack.corpus(), fs
        val_corpus = corpus
        if args.val_features:
            val_corpus = pack_features(args.val_features, fs, encode, text_spec).corpus()
        durations = dict(zip(corpus.names, corpus.durations, strict=True))
        train_q = load_annotations(args.train, known_videos=durations)
        val_durations = dict(zip(val_corpus.names, val_corpus.durations, strict=True))
        val_q = load_annotations(args.val, known_videos=val_durations) if args.val else []

    def tokens(qs):
        if args.synthetic:
            return [data.tokens(q.desc) for q in qs]
        return packed_query_tokens([q.desc for q in qs], encode, text_spec, args.features)

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
        val_corpus=None if args.synthetic else val_corpus,
    )
    print(
        json.dumps(
            {"best_val": result.best_metrics, "checkpoint": f"{args.out}/best", "data": result.data}, indent=1
        )
    )
    return 0

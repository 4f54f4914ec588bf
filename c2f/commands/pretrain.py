"""`c2f pretrain`: HERO's four pre-training tasks (MLM, MFM-NCE, FOM, VSM) on videos with subtitles."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="pre-train the encoder (MLM, MFM, FOM, VSM) on videos with subtitles")
    p.add_argument("--features", help="folder of feature files with subtitles (no annotations needed)")
    p.add_argument("--synthetic", action="store_true", help="the synthetic benchmark's unannotated videos")
    p.add_argument("--synthetic-videos", type=int, default=600)
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--config", default="small", help="model preset: paper, small, tiny")
    p.add_argument("--localizer", choices=["base", "fusion"], default="fusion")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument(
        "--ratio", default="2:2:1:2", help="MLM:MFM:FOM:VSM sampling ratio (0 switches a task off)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from c2f.errors import C2FError
    from c2f.model import get_config
    from c2f.train.pretrain import TASKS, PretrainSettings, pretrain_model

    try:
        ratio = dict(zip(TASKS, (int(x) for x in args.ratio.split(":")), strict=True))
    except ValueError:
        raise C2FError(f"--ratio must be four integers MLM:MFM:FOM:VSM, not {args.ratio!r}") from None
    settings = PretrainSettings(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        ratio=ratio,
        seed=args.seed,
        device=args.device,
    )
    if args.synthetic:
        from c2f.data.synthetic import make_synthetic, subtitled_inputs

        data = make_synthetic(
            num_videos=10, num_concepts=20, seed=args.seed, extra_videos=args.synthetic_videos
        )
        videos = subtitled_inputs(data)
        text_spec = {"kind": "words", "vectors": {w: v.tolist() for w, v in data.word_vectors.items()}}
        cfg = get_config(
            args.config, video_dim=data.video_dim, token_dim=data.token_dim, localizer=args.localizer
        )
        fs, note = None, f"synthetic: {len(videos)} unannotated videos with subtitles (seed {args.seed})"
    else:
        if not args.features:
            raise C2FError("give --features DIR (videos with subtitles) or --synthetic")
        from c2f.data.dataset import corpus_from_feature_dir, text_token_encoder
        from c2f.features import load_features

        first = next(iter(sorted(Path(args.features).glob("*.safetensors"))), None)
        if first is None:
            raise C2FError(f"no feature files in {args.features}")
        feats = load_features(first)
        fs = feats.settings
        text_spec = {"kind": "clip", "arch": fs.clip_model, "weights": fs.clip_weights}
        encode = text_token_encoder(text_spec, fs, args.device)
        cfg = get_config(
            args.config, video_dim=feats.dim, token_dim=encode(["a"])[0].shape[1], localizer=args.localizer
        )
        corpus, fs = corpus_from_feature_dir(args.features, {"feature_settings": fs.to_dict()}, cfg, encode)
        videos = corpus.videos
        if not any(t is not None for v in videos for _, t in v.segments):
            raise C2FError(f"no video in {args.features} has subtitles: MLM and VSM need them")
        note = f"{len(videos)} videos from {args.features}"
    _, summary = pretrain_model(
        cfg, videos, settings, out_dir=args.out, data_note=note, feature_settings=fs, text_encoder=text_spec
    )
    print(json.dumps(summary, indent=1))
    return 0

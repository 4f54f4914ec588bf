"""`c2f import-tvr`: the released TVR data (VALUE/HERO features, annotations, subtitles) -> C2F
feature files with the `value` settings, resumable, with a report."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-tvr",
        help="import VALUE/HERO released features (.npz folders or LMDB) + TVR subtitles as C2F feature files",
        description="Streams: --clip (512-d CLIP ViT-B/32) and --s3d (1024-d MIL-NCE S3D), each a folder "
        "of <vid>.npz or an LMDB video database; or --concat, one clip-vit_mil-nce (1536-d) store. "
        "Re-running skips videos already imported.",
    )
    p.add_argument("--clip", metavar="DIR", help="CLIP-ViT stream: npz folder or LMDB folder")
    p.add_argument("--s3d", metavar="DIR", help="MIL-NCE S3D stream: npz folder or LMDB folder")
    p.add_argument("--concat", metavar="DIR", help="one store of [clip; s3d] 1536-d vectors (clip-vit_mil-nce)")
    p.add_argument(
        "--annotations",
        nargs="*",
        default=[],
        metavar="JSONL",
        help="TVR annotation files (durations; the report counts rows whose video is missing)",
    )
    p.add_argument("--subtitles", metavar="JSONL", help="TVR subtitle file (tvqa_preprocessed_subtitles.jsonl)")
    p.add_argument("--out", required=True, help="output folder of <vid>.safetensors")
    p.add_argument("--only-annotated", action="store_true", help="import only videos the annotation files name")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from c2f.data.lmdb_features import open_feature_store
    from c2f.data.value_import import VALUE_STREAMS, StreamInput, import_tvr
    from c2f.errors import C2FError
    from c2f.features import get_preset

    clip, s3d = VALUE_STREAMS
    if args.concat and not (args.clip or args.s3d):
        inputs = [StreamInput(open_feature_store(args.concat), (clip, s3d))]
    elif args.clip and args.s3d and not args.concat:
        inputs = [StreamInput(open_feature_store(args.clip), (clip,)), StreamInput(open_feature_store(args.s3d), (s3d,))]
    else:
        raise C2FError("give either --clip DIR and --s3d DIR, or --concat DIR")
    report = import_tvr(
        inputs,
        args.out,
        get_preset("value"),
        annotations=args.annotations,
        subtitles=args.subtitles,
        only_annotated=args.only_annotated,
    )
    print(json.dumps(report.to_dict(), indent=1) if args.json else report.summary())
    return 0

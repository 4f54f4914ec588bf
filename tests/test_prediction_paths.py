"""One prediction path: `c2f evaluate --checkpoint`, `Library.search` in learned mode and the demo's
error analysis give the same TVR prediction file and the same metrics, on a tiny checkpoint trained
a few steps on real (tiny-encoder) features, with a video longer than the model's max_clips."""

from __future__ import annotations

import json

import pytest
import torch
from videogen import make_video

from c2f.analysis import evaluate_library, localize_video
from c2f.cli import main as cli_main
from c2f.data.dataset import text_token_encoder, video_input
from c2f.data.tvr import TVRQuery, load_annotations
from c2f.eval.predict import MAX_PREDICTIONS, Boundaries, svmr_moments, vcmr_moments, vr_entries
from c2f.eval.predictions import TVRPredictions, write_predictions
from c2f.features import get_preset, save_features
from c2f.library import Library
from c2f.model import get_config, save_checkpoint
from c2f.model.inference import Corpus
from c2f.search import load_backend
from c2f.train import TrainSettings, train_model

TINY = get_preset("tiny-clip-only")
TEXT = {"kind": "clip", "arch": TINY.clip_model, "weights": TINY.clip_weights}
MAX_CLIPS = 4  # 6 s windows: the 13.5 s video is encoded in four
QUERIES = [
    ("long", "a red door opens", (0.0, 3.0)),
    ("long", "the white wall at the end", (9.0, 13.5)),
    ("short", "green grass", (0.0, 4.5)),
    ("mixed", "something yellow", (0.0, 3.0)),
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("paths")
    src = root / "src"
    make_video(src / "long.mp4", segments=[("red", 3), ("blue", 4.5), ("green", 1.5), ("white", 4.5)])
    (src / "long.srt").write_text("1\n00:00:00,500 --> 00:00:02,000\na red door\n\n"
                                  "2\n00:00:09,000 --> 00:00:12,000\nwhite wall\n")
    make_video(src / "short.mp4", segments=[("green", 4.5)])
    make_video(src / "mixed.mp4", segments=[("yellow", 3), ("red", 3)])
    lib = Library(root / "lib", settings=TINY)
    lib.add([src])
    feats = {r.name.removesuffix(".mp4"): lib.load_features(r.video_id) for r in lib.list()}
    assert feats["long"].num_clips > MAX_CLIPS and feats["long"].subtitles
    features_dir = root / "features"
    features_dir.mkdir()
    for name, f in feats.items():
        save_features(f, features_dir / f"{name}.safetensors")
    annotations = root / "ann.jsonl"
    queries = [
        TVRQuery(i, desc, name, feats[name].video.duration, ts) for i, (name, desc, ts) in enumerate(QUERIES)
    ]
    annotations.write_text("".join(json.dumps(q.to_json()) + "\n" for q in queries))
    # a tiny Fusion checkpoint trained a few steps on these features (long videos windowed)
    torch.manual_seed(0)
    encode = text_token_encoder(TEXT, TINY)
    names = sorted(feats)
    corpus = Corpus(
        names, [video_input(feats[n], encode) for n in names], [feats[n].video.duration for n in names]
    )
    cfg = get_config("tiny", video_dim=feats["long"].dim, token_dim=64, max_clips=MAX_CLIPS, localizer="fusion")
    settings = TrainSettings(steps=4, batch_size=4, lr=1e-3, warmup=1, eval_every=100, seed=0)
    res = train_model(cfg, corpus, queries, encode([q.desc for q in queries]), [], [], settings, progress=False)
    checkpoint = root / "tiny-c2f"
    save_checkpoint(checkpoint, res.model, TINY, TEXT, {"note": "4 steps, for tests"})
    return {
        "root": root,
        "library": lib,
        "features": features_dir,
        "annotations": annotations,
        "checkpoint": checkpoint,
    }


def _search_predictions(library, backend, annotations) -> TVRPredictions:
    """The prediction file built from `Library.search` results alone (100 videos per query)."""
    by_stem = {r.name.removesuffix(".mp4"): r for r in library.list()}
    video2idx = {name: i for i, name in enumerate(sorted(by_stem))}
    idx_of = {r.video_id: video2idx[name] for name, r in by_stem.items()}
    tasks: dict[str, list] = {"VCMR": [], "SVMR": [], "VR": []}
    for q in load_annotations(annotations):
        res = library.search(q.desc, backend, top_k_videos=100, moments_per_video=3)
        curves = [
            (idx_of[v.video_id], Boundaries(v.start_prob, v.end_prob, None), v.video_score, v.clip_times)
            for v in res.videos
        ]
        right = by_stem[q.vid_name]
        gt = localize_video(library, backend, backend.encode_query(q.desc), right, 3)
        head = {"desc_id": q.desc_id, "desc": q.desc}
        tasks["VCMR"].append({**head, "predictions": vcmr_moments(curves)})
        tasks["SVMR"].append(
            {**head, "predictions": svmr_moments(idx_of[right.video_id], Boundaries(gt.start_prob, gt.end_prob, None), gt.clip_times)}
        )
        tasks["VR"].append({**head, "predictions": vr_entries([(idx_of[v.video_id], v.video_score) for v in res.videos])})
    return TVRPredictions(video2idx, tasks)


def test_three_paths_write_the_same_prediction_file(setup, capsys):
    root = setup["root"]
    cli_file, cli_metrics = root / "cli.json", root / "cli_metrics.json"
    rc = cli_main(
        [
            "evaluate",
            "--annotations", str(setup["annotations"]),
            "--checkpoint", str(setup["checkpoint"]),
            "--features", str(setup["features"]),
            "--write-predictions", str(cli_file),
            "--out", str(cli_metrics),
        ]
    )  # fmt: skip
    assert rc == 0
    capsys.readouterr()
    backend = load_backend("learned", checkpoint=setup["checkpoint"])
    search_file = write_predictions(
        _search_predictions(setup["library"], backend, setup["annotations"]), root / "search.json"
    )
    ev = evaluate_library(setup["library"], backend, setup["annotations"], top_k_videos=3)
    ui_file = write_predictions(ev.predictions, root / "ui.json")

    cli = json.loads(cli_file.read_text())
    assert json.loads(search_file.read_text()) == cli
    assert json.loads(ui_file.read_text()) == cli
    # the UI's metrics are `c2f evaluate`'s
    assert ev.metrics == json.loads(cli_metrics.read_text())

    # official sizes and no truncation: every video ranked whatever the UI's top_k, at most 100
    # moments per task, moments past the first window of the long video
    long_idx = cli["video2idx"]["long"]
    assert all(len(e["predictions"]) == 3 for e in cli["VR"])
    for task in ("VCMR", "SVMR"):
        assert all(1 <= len(e["predictions"]) <= MAX_PREDICTIONS for e in cli[task])
    window_s = MAX_CLIPS * TINY.clip_seconds
    assert any(p[0] == long_idx and p[2] > window_s for p in cli["SVMR"][0]["predictions"])


def test_search_shows_the_prediction_file_ranking(setup):
    """What a user sees in learned mode (videos, order, scores) is the VR list of the file."""
    backend = load_backend("learned", checkpoint=setup["checkpoint"])
    preds = _search_predictions(setup["library"], backend, setup["annotations"])
    by_stem = {r.video_id: r.name.removesuffix(".mp4") for r in setup["library"].list()}
    for q, vr in zip(load_annotations(setup["annotations"]), preds.tasks["VR"], strict=True):
        res = setup["library"].search(q.desc, backend, top_k_videos=2, moments_per_video=2)
        shown = [(preds.video2idx[by_stem[v.video_id]], v.video_score) for v in res.videos]
        assert shown == [(p[0], p[3]) for p in vr["predictions"][:2]]

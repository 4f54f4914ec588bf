"""Training and evaluation on real feature files (tiny CLIP features of generated videos), end to end
through the CLI: the path a researcher takes with TVR-format data."""

from __future__ import annotations

import json
import subprocess
import sys

import torch
from videogen import make_video, write_srt

from c2f.data.tvr import TVRQuery, write_annotations
from c2f.features import get_preset, save_features
from c2f.features.extract import extract_features
from c2f.model import C2FModel, get_config, load_checkpoint, save_checkpoint

TINY = get_preset("tiny-clip-only")


def run(*args):
    return subprocess.run([sys.executable, "-m", "c2f", *args], capture_output=True, text=True, timeout=600)


def test_train_and_evaluate_on_feature_files(tmp_path):
    feats_dir = tmp_path / "features"
    colours = ["red", "blue", "green", "yellow"]
    queries = []
    for i, c in enumerate(colours):
        video = make_video(tmp_path / "videos" / f"v{i}.mp4", segments=[("white", 3), (c, 3), ("black", 3)])
        write_srt(video.with_suffix(".srt"), [(0.5, 2.5, "nothing yet"), (3.2, 5.8, f"a {c} screen")])
        feats = extract_features(video, TINY, video_id=f"v{i}")
        assert feats.subtitles  # the sidecar was read
        save_features(feats, feats_dir / f"v{i}.safetensors")
        queries.append(TVRQuery(i, f"the screen turns {c}", f"v{i}", feats.video.duration, (3.0, 6.0), "vt"))
    write_annotations(queries, tmp_path / "train.jsonl")
    write_annotations(queries[:2], tmp_path / "val.jsonl")

    proc = run(
        "train",
        "--train",
        str(tmp_path / "train.jsonl"),
        "--val",
        str(tmp_path / "val.jsonl"),
        "--features",
        str(feats_dir),
        "--config",
        "tiny",
        "--steps",
        "6",
        "--eval-every",
        "3",
        "--batch-size",
        "4",
        "--out",
        str(tmp_path / "run"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    model, meta = load_checkpoint(tmp_path / "run" / "best")
    assert meta["feature_settings"]["preset"] == "tiny-clip-only"
    assert meta["text_encoder"] == {"kind": "clip", "arch": TINY.clip_model, "weights": "random"}
    assert model.cfg.video_dim == 64 and model.cfg.token_dim == 64

    proc = run(
        "evaluate",
        "--checkpoint",
        str(tmp_path / "run" / "best"),
        "--features",
        str(feats_dir),
        "--annotations",
        str(tmp_path / "val.jsonl"),
        "--write-predictions",
        str(tmp_path / "p.json"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(proc.stdout)
    assert set(metrics["VCMR"]) >= {"0.5-r1", "0.7-r100"} and metrics["VR"]["r100"] == 100.0
    preds = json.loads((tmp_path / "p.json").read_text())
    assert sorted(preds["video2idx"]) == ["v0", "v1", "v2", "v3"] and len(preds["VCMR"]) == 2
    # the written file scores the same through --predictions
    again = run(
        "evaluate", "--predictions", str(tmp_path / "p.json"), "--annotations", str(tmp_path / "val.jsonl")
    )
    assert json.loads(again.stdout)["VCMR"] == metrics["VCMR"]


def test_checkpoint_refuses_features_of_other_settings(tmp_path):
    video = make_video(tmp_path / "v.mp4", seconds=3)
    save_features(extract_features(video, get_preset("tiny"), video_id="v"), tmp_path / "f" / "v.safetensors")
    torch.manual_seed(0)
    save_checkpoint(
        tmp_path / "ck",
        C2FModel(get_config("tiny", video_dim=64, token_dim=64)),
        TINY,
        {"kind": "clip", "arch": TINY.clip_model, "weights": "random"},
    )
    write_annotations([TVRQuery(1, "x", "v", 3.0, (0.0, 1.5), "v")], tmp_path / "gt.jsonl")
    proc = run(
        "evaluate",
        "--checkpoint",
        str(tmp_path / "ck"),
        "--features",
        str(tmp_path / "f"),
        "--annotations",
        str(tmp_path / "gt.jsonl"),
    )
    assert proc.returncode == 2 and "other feature settings" in proc.stderr

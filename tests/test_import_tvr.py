"""`c2f import-tvr` on tiny fixtures written in the released formats: VALUE per-video .npz folders,
HERO/VALUE LMDB video databases (msgpack-numpy values and compressed npz values, id2nframe.json),
TVR annotation and subtitle jsonl; then a few training steps on the imported files."""

from __future__ import annotations

import io
import json

import lmdb
import msgpack
import msgpack_numpy
import numpy as np
import pytest

from c2f.cli import main
from c2f.data.value_import import LOG_NAME, REPORT_NAME
from c2f.features import get_preset, load_features
from c2f.model import load_checkpoint

RNG = np.random.default_rng(0)
# (clips in the CLIP stream, clips in the S3D stream); "c" has no S3D file
LENGTHS = {"show_s01e01_seg01_clip_00": (4, 4), "show_s01e01_seg01_clip_01": (6, 5), "c": (3, None)}
A, B = "show_s01e01_seg01_clip_00", "show_s01e01_seg01_clip_01"
CLIP = {v: RNG.standard_normal((n, 512)).astype(np.float16) for v, (n, _) in LENGTHS.items()}
S3D = {v: RNG.standard_normal((n, 1024)).astype(np.float16) for v, (_, n) in LENGTHS.items() if n}


@pytest.fixture
def value_preset():
    return get_preset("value")


def write_npz_folder(folder, arrays, nested=False):
    for vid, arr in arrays.items():
        path = folder / ("tv_show" if nested else "") / f"{vid}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, features=arr)


def write_lmdb(db_dir, arrays, compressed, id2nframe=None):
    """HERO/VALUE layout: <db_dir> holds data.mdb; values msgpack {'features'} or npz bytes;
    id2nframe.json beside the database folder."""
    env = lmdb.open(str(db_dir), map_size=1 << 26)
    with env.begin(write=True) as txn:
        for vid, arr in arrays.items():
            if compressed:
                buf = io.BytesIO()
                np.savez_compressed(buf, features=arr)
                value = buf.getvalue()
            else:
                value = msgpack.packb({"features": arr}, default=msgpack_numpy.encode, use_bin_type=True)
            txn.put(vid.encode(), value)
        txn.put(b"__keys__", json.dumps(sorted(arrays)).encode())
    env.close()
    if id2nframe is not None:
        (db_dir.parent / "id2nframe.json").write_text(json.dumps(id2nframe))


def write_tvr_text(tmp_path):
    ann = [
        {"desc_id": 1, "desc": "he opens the door", "vid_name": A, "ts": [1.0, 4.0], "duration": 5.9, "type": "v"},
        {"desc_id": 2, "desc": "she laughs", "vid_name": A, "ts": [0.0, 2.0], "duration": 5.9, "type": "vt"},
        {"desc_id": 3, "desc": "they sit down", "vid_name": B, "ts": [3.0, 7.4], "duration": 7.4, "type": "t"},
        {"desc_id": 4, "desc": "a car passes", "vid_name": "gone", "ts": [0.0, 1.0], "duration": 9.0, "type": "v"},
    ]
    subs = [
        {"vid_name": A, "sub": [{"start": 0.2, "end": 2.4, "text": "(Ross:) Hi."}, {"start": 9.0, "end": 9.5, "text": "late"}]},
        {"vid_name": B, "sub": [{"start": 3.1, "end": 5.0, "text": "Sit down."}]},
        {"vid_name": "nofeat", "sub": [{"start": 0.0, "end": 1.0, "text": "x"}]},
    ]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ann))
    (tmp_path / "subs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in subs))
    return tmp_path / "train.jsonl", tmp_path / "subs.jsonl"


def run_import(capsys, *args):
    assert main(["import-tvr", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_npz_folders_import_with_subtitles_and_report(tmp_path, capsys, value_preset):
    write_npz_folder(tmp_path / "clip-vit", CLIP, nested=True)
    write_npz_folder(tmp_path / "mil-nce-s3d", S3D)
    ann, subs = write_tvr_text(tmp_path)
    out = tmp_path / "feats"
    report = run_import(
        capsys, "--clip", tmp_path / "clip-vit", "--s3d", tmp_path / "mil-nce-s3d",
        "--annotations", ann, "--subtitles", subs, "--out", out,
    )  # fmt: skip
    assert sorted(p.stem for p in out.glob("*.safetensors")) == [A, B]
    feats = load_features(out / f"{B}.safetensors", expected=value_preset)
    # the shorter stream wins (5 clips); columns [clip; s3d], exactly the released float16 values
    assert feats.streams == [("clip", 512), ("s3d", 1024)] and feats.num_clips == 5
    np.testing.assert_array_equal(feats.features, np.concatenate([CLIP[B][:5], S3D[B]], 1).astype(np.float32))
    assert feats.video.duration == 7.4
    np.testing.assert_allclose(feats.clip_times[-1], [6.0, 7.4])
    a = load_features(out / f"{A}.safetensors")
    assert [s.text for s in a.subtitles] == ["(Ross:) Hi.", "late"] and a.video.duration == 5.9
    assert report["imported"] == 2 and report["missing_from_stream"] == {"clip": [], "s3d": ["c"]}
    assert report["length_mismatch_streams"] == [{"vid": B, "lengths": {"clip": 6, "s3d": 5}, "kept": 5}]
    assert report["length_mismatch_id2nframe"] == [] and report["clips_vs_duration"] == []
    assert report["annotations_missing_video"] == 1 and report["annotated_videos_missing"] == ["gone"]
    assert report["subtitles_past_end"] == 1 and report["subtitle_videos_missing"] == ["nofeat"]
    assert report["videos_with_subtitles"] == 2 and report["durations_estimated"] == 0
    assert json.loads((out / REPORT_NAME).read_text()) == report


def test_lmdb_msgpack_and_compressed_databases_import_like_npz(tmp_path, capsys):
    both = {v: a for v, a in CLIP.items() if v in S3D}
    write_npz_folder(tmp_path / "clip-vit", both)
    write_npz_folder(tmp_path / "mil-nce-s3d", S3D)
    run_import(capsys, "--clip", tmp_path / "clip-vit", "--s3d", tmp_path / "mil-nce-s3d", "--out", tmp_path / "ref")
    # per-stream msgpack databases
    for name, arrays in (("clip-vit_1.5", CLIP), ("mil-nce_1.5", S3D)):
        (tmp_path / "lmdb" / name).mkdir(parents=True)
        write_lmdb(tmp_path / "lmdb" / name, arrays, compressed=False)
    run_import(
        capsys, "--clip", tmp_path / "lmdb/clip-vit_1.5", "--s3d", tmp_path / "lmdb/mil-nce_1.5", "--out", tmp_path / "m"
    )
    # one compressed clip-vit_mil-nce database, cut by id2nframe as VALUE's converter does
    concat = {v: np.concatenate([both[v][: len(S3D[v])], S3D[v]], 1) for v in both}
    db = tmp_path / "tv" / "clip-vit_mil-nce_1.5_compressed"
    db.mkdir(parents=True)
    write_lmdb(db, concat, compressed=True, id2nframe={A: 3, B: 5})
    report = run_import(capsys, "--concat", db, "--out", tmp_path / "z")
    for vid in (A, B):
        ref = load_features(tmp_path / "ref" / f"{vid}.safetensors").features
        np.testing.assert_array_equal(load_features(tmp_path / "m" / f"{vid}.safetensors").features, ref)
        z = load_features(tmp_path / "z" / f"{vid}.safetensors").features
        np.testing.assert_array_equal(z, ref[: {A: 3, B: 5}[vid]])
    assert report["length_mismatch_id2nframe"] == [{"vid": A, "stored": 4, "id2nframe": 3, "kept": 3}]
    assert report["durations_estimated"] == 2  # no annotations: duration = clips * 1.5


def test_rerun_skips_imported_videos_and_redoes_damaged_ones(tmp_path, capsys):
    write_npz_folder(tmp_path / "clip-vit", CLIP)
    write_npz_folder(tmp_path / "mil-nce-s3d", S3D)
    ann, subs = write_tvr_text(tmp_path)
    args = ["--clip", tmp_path / "clip-vit", "--s3d", tmp_path / "mil-nce-s3d", "--annotations", ann, "--out"]
    first = run_import(capsys, *args, tmp_path / "f", "--subtitles", subs)
    stamp = (tmp_path / "f" / f"{A}.safetensors").stat().st_mtime_ns
    (tmp_path / "f" / f"{B}.safetensors").write_bytes(b"cut short")
    again = run_import(capsys, *args, tmp_path / "f", "--subtitles", subs)
    assert (again["imported"], again["skipped_existing"]) == (1, 1)
    assert (tmp_path / "f" / f"{A}.safetensors").stat().st_mtime_ns == stamp
    # the report covers skipped videos too (from the log)
    assert again["length_mismatch_streams"] == first["length_mismatch_streams"]
    assert len((tmp_path / "f" / LOG_NAME).read_text().splitlines()) == 3
    # other subtitles change the inputs: both videos are imported again
    third = run_import(capsys, *args, tmp_path / "f")
    assert (third["imported"], third["skipped_existing"]) == (2, 0)
    assert load_features(tmp_path / "f" / f"{A}.safetensors").subtitles == []


def test_wrong_widths_and_missing_inputs_are_reported(tmp_path, capsys):
    write_npz_folder(tmp_path / "clip-vit", CLIP)
    assert main(["import-tvr", "--clip", str(tmp_path / "clip-vit"), "--out", str(tmp_path / "o")]) == 2
    assert "--clip DIR and --s3d DIR" in capsys.readouterr().err
    report = run_import(capsys, "--clip", tmp_path / "clip-vit", "--s3d", tmp_path / "clip-vit", "--out", tmp_path / "o")
    assert report["imported"] == 0 and len(report["unreadable"]) == 3
    assert "s3d: 512-d, expected 1024" in report["unreadable"][0]["why"]
    assert main(["import-tvr", "--concat", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2


def test_imported_tvr_trains(tmp_path, capsys):
    write_npz_folder(tmp_path / "clip-vit", CLIP)
    write_npz_folder(tmp_path / "mil-nce-s3d", S3D)
    ann, subs = write_tvr_text(tmp_path)
    run_import(
        capsys, "--clip", tmp_path / "clip-vit", "--s3d", tmp_path / "mil-nce-s3d",
        "--annotations", ann, "--subtitles", subs, "--out", tmp_path / "feats", "--only-annotated",
    )  # fmt: skip
    rows = [json.loads(line) for line in ann.read_text().splitlines()]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows if r["vid_name"] != "gone"))
    # a validation split of its own videos (TVR's protocol): here video A alone
    (tmp_path / "v.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows if r["vid_name"] == A))
    run_import(
        capsys, "--clip", tmp_path / "clip-vit", "--s3d", tmp_path / "mil-nce-s3d",
        "--annotations", tmp_path / "v.jsonl", "--out", tmp_path / "val_feats", "--only-annotated",
    )  # fmt: skip
    argv = [
        "train", "--train", str(tmp_path / "t.jsonl"), "--val", str(tmp_path / "v.jsonl"),
        "--val-features", str(tmp_path / "val_feats"),
        "--features", str(tmp_path / "feats"), "--config", "tiny", "--text-encoder", "c2f-tiny-ViT:random",
        "--steps", "2", "--batch-size", "2", "--grad-accum", "2", "--eval-every", "2", "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["data"]["queries"] == 3 and summary["data"]["queries_on_videos_longer_than_max_clips"] == 0
    assert summary["best_val"]["VR"]["r1"] == 100.0  # validation searched the one val video only
    model, meta = load_checkpoint(tmp_path / "run" / "last")
    assert model.cfg.video_dim == 1536 and meta["feature_settings"]["preset"] == "value"
    assert meta["text_encoder"] == {"kind": "clip", "arch": "c2f-tiny-ViT", "weights": "random"}
    assert meta["extra"]["train"]["grad_accum"] == 2
    packs = list((tmp_path / "feats" / ".c2f-pack").iterdir())
    assert any(p.is_dir() for p in packs)  # packed once, beside the features

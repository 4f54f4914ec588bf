"""Search by example on a real (tiny) library whose videos repeat a pattern: "more like this" from a
moment finds the repeats and leaves the source out, a picture finds where it appears, text mixed
with either scores (1 - w) * text + w * example; every number against a brute-force computation on
the stored features; the CLI's --like/--image/--weight, and the refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from videogen import make_image, make_video

from c2f.encoders import create_clip_encoder
from c2f.errors import LibraryError, QueryError
from c2f.features import get_preset, load_features
from c2f.index.ranking import order_videos_with_ties, tie_tolerance
from c2f.library import Library
from c2f.search import MomentRef, Query, SearchResult, load_backend, parse_moment_ref
from c2f.search.by_example import load_image, span_clips
from c2f.search.localizer import localize_curve

ROOT = Path(__file__).resolve().parents[1]
TINY = get_preset("tiny-clip-only")
# On the 1.5 s clip grid. The pattern red+yellow (two clips) is the source at 3.0-6.0 s in a.mp4,
# repeats at 9.0-12.0 s in a.mp4 and at 4.5-7.5 s in b.mp4; c.mp4 never shows it.
PATTERN = [("red", 1.5), ("yellow", 1.5)]
VIDEOS = {
    "a.mp4": [("black", 3.0), *PATTERN, ("black", 3.0), *PATTERN, ("black", 1.5)],
    "b.mp4": [("blue", 4.5), *PATTERN, ("blue", 1.5)],
    "c.mp4": [("green", 3.0), ("white", 3.0)],
}
SOURCE = ("a.mp4", 3.0, 6.0)
REPEATS = {("a.mp4", 9.0, 12.0), ("b.mp4", 4.5, 7.5)}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Library, dict[str, str], Path]:
    base = tmp_path_factory.mktemp("by-example")
    for name, segments in VIDEOS.items():
        make_video(base / "videos" / name, segments=segments)
    lib = Library(base / "lib", settings=TINY)
    assert len(lib.add([base / "videos"]).added) == 3
    picture = make_image(base / "red.png", size=(96, 64))  # solid red, like the pattern's first clip
    return lib, {r.name: r.video_id for r in lib.list()}, picture


@pytest.fixture(scope="module")
def tiny():
    return load_backend("tiny")


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def clip_rows(lib: Library, video_id: str) -> np.ndarray:
    """(N, d) float64 unit CLIP-stream vectors of one video, from its feature file."""
    return unit(load_features(lib.feature_path(video_id)).stream("clip"))


def brute_force(
    lib: Library, example: np.ndarray, text: np.ndarray | None = None, w: float = 1.0, source=None
) -> list[dict]:
    """Every indexed video: per clip (1 - w) <t, c> + w <e, c> (or <e, c> alone), the source span's
    clips left out of Eq. 3; videos best first, ties by catalog key."""
    rows = []
    for rec in lib.catalog.all("indexed"):
        clips = clip_rows(lib, rec.video_id)
        sim = clips @ unit(example)
        if text is not None:
            sim = (1 - w) * (clips @ unit(text)) + w * sim
        kept = np.ones(len(sim), bool)
        if source is not None and source[0] == rec.video_id:
            kept[source[1] : source[2] + 1] = False
        if kept.any():
            rows.append((float(sim[kept].max()), rec.key, rec.video_id, sim, kept))
    order = order_videos_with_ties(
        np.array([r[0] for r in rows]), np.array([r[1] for r in rows]), tie_tolerance(len(example))
    )
    return [dict(zip(["score", "key", "video_id", "sim", "kept"], rows[i], strict=True)) for i in order]


def assert_equals_brute_force(result: SearchResult, expected: list[dict], moments: int) -> None:
    assert [v.video_id for v in result.videos] == [e["video_id"] for e in expected][: len(result.videos)]
    for v, e in zip(result.videos, expected, strict=False):
        assert v.video_score == pytest.approx(e["score"], abs=1e-5)
        np.testing.assert_allclose(v.similarity[e["kept"]], e["sim"][e["kept"]], atol=1e-5)
        assert (v.similarity[~e["kept"]] < v.similarity[e["kept"]].min()).all()  # the source: below all
        spans = [sp for sp in localize_curve(v.similarity, max_spans=moments).spans]
        assert [(m.start, m.end) for m in v.moments] == [
            (v.clip_times[a, 0], v.clip_times[b, 1]) for a, b, _ in spans
        ]
        for m, (a, b, _) in zip(v.moments, spans, strict=True):  # a moment scores its mean clip score
            assert e["kept"][a : b + 1].all()
            assert m.score == pytest.approx(e["sim"][a : b + 1].mean(), abs=1e-5)


def source_of(lib: Library, ids: dict[str, str]) -> tuple[str, int, int]:
    name, start, end = SOURCE
    first, last = span_clips(load_features(lib.feature_path(ids[name])).clip_times, start, end)
    return ids[name], first, last


def moment_example(lib: Library, ids: dict[str, str]) -> np.ndarray:
    """The normalised mean of the source span's unit clip vectors."""
    vid, first, last = source_of(lib, ids)
    return unit(clip_rows(lib, vid)[first : last + 1].mean(0))


def test_more_like_this_finds_the_repeats_and_leaves_the_source_out(library, tiny) -> None:
    lib, ids, _ = library
    name, start, end = SOURCE
    result = lib.search(Query(like=MomentRef(ids[name], start, end)), tiny, top_k_videos=3, moments_per_video=2)
    names = {v: n for n, v in ids.items()}
    found = [(names[m.video_id], m.start, m.end) for m in result.moments]
    assert set(found[:2]) == REPEATS  # the two repeats lead, in either order (equal scores)
    assert result.moments[0].score == pytest.approx(result.moments[1].score, abs=1e-5)
    assert not [f for f in found if f[0] == name and f[1] < end and f[2] > start]  # the source is left out
    assert result.query == f"like a.mp4 ({ids[name]}) 3.00-6.00 s" and any("left out" in n for n in result.notes)
    expected = brute_force(lib, moment_example(lib, ids), source=source_of(lib, ids))
    assert_equals_brute_force(result, expected, moments=2)
    # Eq. 3 without the source's clips: a.mp4 scores by its repeat, as b.mp4 does.
    assert {v.name: v.video_score for v in result.videos}["a.mp4"] == pytest.approx(expected[0]["score"], abs=1e-5)


def test_more_like_this_from_a_result_row(library, tiny) -> None:
    lib, _, _ = library
    row = lib.search("a red car", tiny, top_k_videos=3, moments_per_video=3).moments[0]
    again = lib.search(Query(like=row), tiny, top_k_videos=3, moments_per_video=3)
    assert again.moments
    for m in again.moments:  # nothing overlapping the row's own span in its video
        assert not (m.video_id == row.video_id and m.start < row.end and m.end > row.start)


def test_a_source_covering_its_whole_video_drops_the_video(library, tiny) -> None:
    lib, ids, _ = library
    result = lib.search(Query(like=MomentRef(ids["c.mp4"], 0.0, 60.0)), tiny, top_k_videos=3, moments_per_video=2)
    clips = clip_rows(lib, ids["c.mp4"])
    expected = brute_force(lib, unit(clips.mean(0)), source=(ids["c.mp4"], 0, len(clips) - 1))
    assert len(expected) == 2 and ids["c.mp4"] not in {e["video_id"] for e in expected}
    assert_equals_brute_force(result, expected, moments=2)
    assert len(result.videos) == 2


def test_picture_query_finds_the_scene(library, tiny) -> None:
    lib, ids, picture = library
    result = lib.search(Query(image=picture), tiny, top_k_videos=3, moments_per_video=2)
    names = {v: n for n, v in ids.items()}
    best = {(names[m.video_id], m.start, m.end) for m in result.moments[:3]}
    assert best == {("a.mp4", 3.0, 4.5), ("a.mp4", 9.0, 10.5), ("b.mp4", 4.5, 6.0)}  # the red clips
    assert result.query == "picture red.png"
    pixels = load_image(picture, TINY.decode_short_side)
    example = create_clip_encoder(TINY).encode_images(pixels[None])[0].numpy()
    assert_equals_brute_force(result, brute_force(lib, example), moments=2)


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("kind", ["like", "image"])
def test_mixed_query_is_the_weighted_score(library, tiny, kind: str, weight: float) -> None:
    lib, ids, picture = library
    text = "a red car drives by"
    t = create_clip_encoder(TINY).encode_text([text]).pooled[0].numpy()
    if kind == "like":
        name, start, end = SOURCE
        query = Query(text=text, like=MomentRef(ids[name], start, end), weight=weight)
        example, source = moment_example(lib, ids), source_of(lib, ids)
    else:
        query = Query(text=text, image=picture, weight=weight)
        pixels = load_image(picture, TINY.decode_short_side)
        example, source = create_clip_encoder(TINY).encode_images(pixels[None])[0].numpy(), None
    result = lib.search(query, tiny, top_k_videos=3, moments_per_video=2)
    assert_equals_brute_force(result, brute_force(lib, example, t, weight, source), moments=2)
    assert f"score = {1 - weight:g} x text + {weight:g} x example (cosines)" in result.notes
    if kind == "image" and weight == 0.0:  # nothing of the picture: the text search itself
        plain = lib.search(text, tiny, top_k_videos=3, moments_per_video=2)
        assert [(m.video_id, m.start, m.end) for m in result.moments] == [
            (m.video_id, m.start, m.end) for m in plain.moments
        ]
        np.testing.assert_allclose([m.score for m in result.moments], [m.score for m in plain.moments], atol=1e-6)


def test_load_image_turns_and_resizes_like_video_frames(tmp_path: Path) -> None:
    from PIL import Image

    img = Image.new("RGB", (80, 40), (255, 0, 0))
    img.paste((0, 0, 255), (40, 0, 80, 40))  # right half blue
    exif = img.getexif()
    exif[0x0112] = 6  # EXIF orientation: turn 90 degrees clockwise to show
    img.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    pixels = load_image(tmp_path / "turned.jpg", 64)
    assert pixels.shape == (128, 64, 3) and pixels.dtype == np.uint8 and pixels.flags.writeable
    top, bottom = pixels[:32].reshape(-1, 3).mean(0), pixels[-32:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and bottom[2] > 200  # shown upright: red above blue
    array = load_image(np.zeros((10, 30, 3), np.uint8), 20)
    assert array.shape == (20, 60, 3)


def test_parse_moment_ref() -> None:
    assert parse_moment_ref("3f2a9c81d0e1:12.5-18") == MomentRef("3f2a9c81d0e1", 12.5, 18.0)
    assert parse_moment_ref(" ab12:1:05-1:20.5 ") == MomentRef("ab12", 65.0, 80.5)
    assert parse_moment_ref("ab12:1:00:00-1:00:03") == MomentRef("ab12", 3600.0, 3603.0)
    for bad in ["ab12", "ab12:5", "ab12:-1-3", "ab12 3-6", ":3-6", "ab12:3-", "ab12:x-6"]:
        with pytest.raises(QueryError, match="is not a moment: write VIDEO_ID:START-END"):
            parse_moment_ref(bad)


def test_bad_example_queries(library, tiny, tmp_path: Path) -> None:
    lib, ids, picture = library
    a = ids["a.mp4"]
    with pytest.raises(LibraryError, match="no video 'nope' in the library"):
        lib.search(Query(like=MomentRef("nope", 0, 3)), tiny)
    with pytest.raises(QueryError, match="0 <= start < end"):
        lib.search(Query(like=MomentRef(a, 6, 3)), tiny)
    with pytest.raises(QueryError, match="after the video's end"):
        lib.search(Query(like=MomentRef(a, 600, 603)), tiny)
    with pytest.raises(QueryError, match="not both"):
        Query(like=MomentRef(a, 0, 3), image=picture)
    with pytest.raises(QueryError, match="nothing to search for"):
        Query()
    with pytest.raises(QueryError, match="between 0 and 1"):
        Query(text="x", image=picture, weight=1.5)
    with pytest.raises(QueryError, match="the query is empty"):
        Query(text="  ", image=picture)
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(QueryError, match=r"notes\.png: not a picture C2F can read"):
        lib.search(Query(image=tmp_path / "notes.png"), tiny)
    with pytest.raises(QueryError, match="picture not found"):
        lib.search(Query(image=tmp_path / "gone.jpg"), tiny)
    with pytest.raises(QueryError, match="uint8"):
        lib.search(Query(image=np.zeros((4, 4), np.float32)), tiny)
    with pytest.raises(QueryError, match="matched on what is seen"):
        lib.search(Query(image=picture), tiny.with_match("both", 0.5))


def test_learned_backend_refuses_examples(library, tmp_path: Path) -> None:
    from c2f.model import C2FModel, get_config, save_checkpoint

    lib, ids, picture = library
    torch.manual_seed(0)
    path = tmp_path / "tiny-c2f"
    text = {"kind": "clip", "arch": TINY.clip_model, "weights": TINY.clip_weights}
    save_checkpoint(path, C2FModel(get_config("tiny", video_dim=64, token_dim=64)), TINY, text, {})
    learned = load_backend("learned", checkpoint=path)
    for query in (Query(image=picture), Query(text="a car", like=MomentRef(ids["a.mp4"], 3, 6))):
        with pytest.raises(QueryError, match=r"searches by text only .* zero-shot mode"):
            lib.search(query, learned)


def test_cli_like_image_and_weight_equal_the_api(library, tiny, tmp_path: Path, capsys) -> None:
    """--like in a real process, --image with --weight through the same entry point in this one."""
    from c2f.cli import main

    lib, ids, picture = library
    common = ["--library", str(lib.root), "--mode", "tiny", "--top-k", "2", "--moments", "2", "--json"]
    like = ["--like", f"{ids['a.mp4']}:3-6", *common, "--export", str(tmp_path / "like"), "--format", "json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "C2F_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "c2f", "search", *like], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    image = ["a red car", "--image", str(picture), "--weight", "0.25", *common]
    assert main(["search", *image, "--export", str(tmp_path / "image"), "--format", "json"]) == 0
    printed = capsys.readouterr()
    cases = [
        (proc.stdout, proc.stderr, tmp_path / "like", Query(like=MomentRef(ids["a.mp4"], 3.0, 6.0))),
        (printed.out, printed.err, tmp_path / "image", Query("a red car", image=str(picture), weight=0.25)),
    ]
    for out, err, folder, query in cases:
        cli, api = json.loads(out), lib.search(query, tiny, top_k_videos=2, moments_per_video=2).to_dict()
        cli.pop("timings_ms"), api.pop("timings_ms")
        assert cli == api
        exported = json.loads((folder / "moments.json").read_text())
        assert exported["title"] == f"C2F {api['query']}" and f"wrote {folder / 'moments.json'}" in err
        assert [(r["video_id"], r["start"], r["end"], r["score"]) for r in exported["moments"]] == [
            (m["video_id"], m["start"], m["end"], m["score"]) for m in api["moments"]
        ]

@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "nothing to search for"),
        (["x", "--weight", "0.3"], "--weight mixes a sentence with --like or --image"),
        (["--like", "a:1"], "'a:1' is not a moment"),
        (["x", "--export", "out"], "--export DIR and --format FORMAT go together"),
        (["x", "--export", "out", "--format", "csv", "--exact-cuts"], "--exact-cuts goes with --format clips"),
    ],
)
def test_cli_refuses_bad_combinations_in_one_line(library, capsys, args: list[str], message: str) -> None:
    from c2f.cli import main

    lib, _, _ = library
    assert main(["search", *args, "--library", str(lib.root), "--mode", "tiny"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {err.removeprefix('error: ')}" and err.startswith(f"error: {message}") and err.count("\n") == 1

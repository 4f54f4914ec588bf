"""Coarse-to-fine search on a real (tiny) library against an exact brute-force computation on the
stored features; persistence; bad queries; API == CLI --json."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from videogen import make_text_file_as_video, make_video

from c2f.encoders import create_clip_encoder
from c2f.errors import CheckpointError, FeatureMismatchError, LibraryError, QueryError
from c2f.features import get_preset, load_features
from c2f.index.ranking import order_videos_with_ties as video_order
from c2f.index.ranking import tie_tolerance
from c2f.library import Library
from c2f.ranking import SCORE_TOLERANCE
from c2f.search import SearchResult, list_checkpoints, load_backend
from c2f.search.localizer import localize_curve

ROOT = Path(__file__).resolve().parents[1]
TINY = get_preset("tiny-clip-only")
# Colour segments on the 1.5 s clip grid: every clip shows one colour.
PLANTED = {
    "a.mp4": [("black", 3.0), ("red", 3.0), ("black", 3.0)],
    "b.mkv": [("blue", 4.5), ("white", 1.5)],
    "c.mp4": [("green", 1.5), ("yellow", 3.0), ("green", 3.0)],
}


def make_planted_videos(folder: Path) -> dict[str, list[float]]:
    """Writes PLANTED into `folder`; returns each file's segment edges in seconds."""
    edges = {}
    for name, segments in PLANTED.items():
        make_video(folder / name, segments=segments)
        edges[name] = np.cumsum([0.0] + [s for _, s in segments]).tolist()
    return edges


def brute_force(library: Library, query: str, top_k: int, moments: int) -> list[dict]:
    """Eq. 3 by max-pooling every stored clip vector (numpy, float64): videos best first, ties (within
    the float64 rounding the index allows for) by catalog key, as the index orders them."""
    q = create_clip_encoder(TINY).encode_text([" ".join(query.split())]).pooled[0].numpy().astype(np.float64)
    q = q / np.linalg.norm(q)
    rows = []
    for rec in library.catalog.all("indexed"):
        feats = load_features(library.feature_path(rec.video_id))
        clips = feats.stream("clip").astype(np.float64)
        sim = (clips / np.linalg.norm(clips, axis=1, keepdims=True)) @ q  # (N,)
        rows.append((float(sim.max()), rec.key, rec.video_id, sim))
    scores, keys = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    order = video_order(scores, keys, tie_tolerance(len(q)))
    return [{"video_id": rows[i][2], "score": rows[i][0], "similarity": rows[i][3]} for i in order[:top_k]]


def assert_matches_brute_force(result: SearchResult, expected: list[dict], moments: int) -> None:
    """What a user sees, with float tolerances: the same videos in the same order with the same
    scores and curves (to 1e-5), and each video's moments are those the localizer finds on the curve
    shown for it (moments across CPUs are covered by the localizer's noise tests)."""
    assert [v.video_id for v in result.videos] == [e["video_id"] for e in expected]
    for v, e in zip(result.videos, expected, strict=True):
        assert v.video_score == pytest.approx(e["score"], abs=1e-5)
        np.testing.assert_allclose(v.similarity, e["similarity"], atol=1e-5)
        spans = localize_curve(v.similarity, max_spans=moments).spans
        assert [(m.start, m.end) for m in v.moments] == [
            (v.clip_times[a, 0], v.clip_times[b, 1]) for a, b, _ in spans
        ]
        assert [m.score for m in v.moments] == [s for _, _, s in spans]
        for m, (a, b, _) in zip(v.moments, spans, strict=True):  # a moment's score is its mean similarity
            assert m.score == pytest.approx(e["similarity"][a : b + 1].mean(), abs=1e-5)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Library, dict[str, list[float]]]:
    base = tmp_path_factory.mktemp("engine")
    videos = base / "videos"
    edges = make_planted_videos(videos)
    make_text_file_as_video(videos / "broken.mp4")
    lib = Library(base / "lib", settings=TINY)
    report = lib.add([videos])
    assert len(report.added) == 3 and [n for n, _ in report.failed] == ["broken.mp4"]
    return lib, edges


@pytest.fixture(scope="module")
def tiny():
    return load_backend("tiny")


@pytest.mark.parametrize("query", ["a red car drives by", "猫が走る — café crème", "x"])
def test_search_equals_brute_force(library, tiny, query: str) -> None:
    lib, _ = library
    result = lib.search(query, tiny, top_k_videos=2, moments_per_video=2)
    assert_matches_brute_force(result, brute_force(lib, query, top_k=2, moments=2), moments=2)
    assert result.backend_name == tiny.name and tiny.is_tiny and "meaningless" in tiny.description
    scores = [m.score for m in result.moments]
    assert all(a >= b - SCORE_TOLERANCE for a, b in itertools.pairwise(scores))  # best first across videos
    assert len(result.moments) == sum(len(v.moments) for v in result.videos)


def test_curves_and_moments_follow_the_planted_segments(library, tiny) -> None:
    lib, edges = library
    result = lib.search("a person opens a door", tiny, top_k_videos=10, moments_per_video=3)
    assert len(result.videos) == 3  # the broken file is not searchable
    for v in result.videos:
        n = len(v.clip_times)
        assert v.clip_times.shape == (n, 2) and v.clip_times[-1, 1] == pytest.approx(v.duration)
        for curve in (v.similarity, v.importance, v.start_prob, v.end_prob):
            assert curve.shape == (n,)
        assert v.start_prob.sum() == pytest.approx(1) and v.end_prob.sum() == pytest.approx(1)
        assert v.importance.min() >= 0 and v.importance.max() <= 1
        # One colour per segment: the curve is constant inside each planted segment ...
        seg = np.searchsorted(edges[v.name], v.clip_times[:, 0], side="right")
        for s in np.unique(seg):
            assert np.ptp(v.similarity[seg == s]) < 1e-4
        # ... so every moment starts and ends on a segment edge (the last one is the file's duration,
        # which the encoder may round up by a frame).
        ends = [*edges[v.name][:-1], v.duration]
        for m in v.moments:
            assert min(abs(m.start - e) for e in ends) < 1e-6
            assert min(abs(m.end - e) for e in ends) < 1e-6
            assert m.video_score == v.video_score and m.name == v.name


def test_reopened_library_gives_identical_results(library, tiny) -> None:
    lib, _ = library
    first = lib.search("a dog catches a frisbee", tiny).to_dict()
    again = Library(lib.root).search("a dog catches a frisbee", tiny).to_dict()
    first.pop("timings_ms"), again.pop("timings_ms")
    assert first == again


def test_cli_json_equals_api(library, tiny) -> None:
    lib, _ = library
    query = "une femme ouvre la fenêtre"
    api = lib.search(query, tiny, top_k_videos=2, moments_per_video=2).to_dict()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "C2F_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "c2f", "search", query, "--library", str(lib.root), "--mode", "tiny"]
    proc = subprocess.run(
        [*cmd, "--top-k", "2", "--moments", "2", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    cli = json.loads(proc.stdout)
    api.pop("timings_ms"), cli.pop("timings_ms")
    assert cli == api


def test_bad_queries(library, tiny) -> None:
    lib, _ = library
    for bad in ["", "   ", "\n\t  \n"]:
        with pytest.raises(QueryError, match="the query is empty"):
            lib.search(bad, tiny)
    with pytest.raises(QueryError, match="must be text"):
        lib.search(None, tiny)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="at least 1"):
        lib.search("a cat", tiny, top_k_videos=0)
    long = lib.search("a very long query " * 100, tiny)
    assert long.videos and any("only its first 75 tokens" in n for n in long.notes)
    assert lib.search("  spaced \t out  ", tiny).query == "spaced out"


def test_empty_library_and_cli_errors(tmp_path: Path, tiny) -> None:
    lib = Library(tmp_path / "empty", settings=TINY)
    with pytest.raises(LibraryError, match="the library is empty: add videos first"):
        lib.search("a cat", tiny)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "C2F_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "c2f", "search", " ", "--library", str(lib.root), "--mode", "tiny"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "error: the query is empty" in proc.stderr


def test_backend_refuses_foreign_features(tmp_path: Path, tiny) -> None:
    other = Library(tmp_path / "other", settings=get_preset("tiny-clip-only", clip_seconds=3.0))
    with pytest.raises(FeatureMismatchError):
        other.search("a cat", tiny)


def test_backend_modes_and_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Exception, match="unknown search mode"):
        load_backend("fast")
    (tmp_path / "run1").mkdir()
    (tmp_path / "run1" / "config.json").write_text("{}")
    (tmp_path / "run1" / "model.safetensors").write_bytes(b"")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    assert list_checkpoints(tmp_path) == ["run1"]
    monkeypatch.setenv("C2F_CHECKPOINTS", str(tmp_path / "none"))
    with pytest.raises(CheckpointError, match="no C2F checkpoint"):
        load_backend("learned")

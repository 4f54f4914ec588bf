"""Search that hears: the speech score of each clip and its fusion with the visual score, against a
brute-force numpy reference on a real (tiny) library with subtitles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from videogen import make_video, write_srt

from c2f.encoders import create_clip_encoder
from c2f.errors import QueryError
from c2f.features import Subtitle, get_preset, load_features
from c2f.features.subtitles import align_subtitles
from c2f.library import Library
from c2f.ranking import order_cosines_with_ties
from c2f.search import load_backend
from c2f.search.localizer import localize_curve
from c2f.speech.fusion import DEFAULT_SPEECH_WEIGHT, fuse, speech_curve
from c2f.speech.sentence import SentenceEncoder

TINY = get_preset("tiny-clip-only")
VIDEOS = {  # name: (colour segments, subtitle cues or None)
    "keys.mp4": ([("black", 3.0), ("red", 4.5)], [(0.2, 2.9, "she hands him the keys"), (3.1, 7.0, "the car door opens")]),
    "dog.mp4": ([("blue", 4.5), ("white", 1.5)], [(1.0, 4.0, "the dog runs in the kitchen")]),
    "table.mkv": ([("green", 6.0)], [(0.0, 1.4, "they sit at the table"), (4.6, 6.0, "music")]),
    "silent.mp4": ([("yellow", 3.0), ("red", 3.0)], None),
}
QUERY = "a woman hands the car keys to a man"


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    folder = tmp_path_factory.mktemp("videos")
    for name, (segments, cues) in VIDEOS.items():
        make_video(folder / name, segments=segments)
        if cues:
            write_srt((folder / name).with_suffix(".srt"), cues)
    lib = Library(tmp_path_factory.mktemp("lib"), settings=TINY)
    assert lib.add(folder).ok
    return lib


@pytest.fixture(scope="module")
def sentences() -> SentenceEncoder:
    return SentenceEncoder("tiny-test", device="cpu")


def brute_speech(sentences: SentenceEncoder, query: str, subs: list[Subtitle], n: int) -> np.ndarray:
    """Clip by clip: the owning cue's text encoded alone, cosine with the query, negatives cut."""
    q = sentences.encode([query])[0].astype(np.float64)
    owner = align_subtitles(subs, n, 1.5).clip_to_subtitle
    out = np.zeros(n)
    for r in range(n):
        if owner[r] >= 0:
            t = sentences.encode([subs[owner[r]].text])[0].astype(np.float64)
            out[r] = max(0.0, float(q @ t))
    return out


def brute_force(library: Library, sentences: SentenceEncoder, query: str, weight: float, top_k: int) -> list[dict]:
    q = create_clip_encoder(TINY).encode_text([query]).pooled[0].numpy().astype(np.float64)
    q /= np.linalg.norm(q)
    rows = []
    for rec in library.catalog.all("indexed"):
        feats = load_features(library.feature_path(rec.video_id))
        clips = feats.stream("clip").astype(np.float64)
        visual = (clips / np.linalg.norm(clips, axis=1, keepdims=True)) @ q
        curve = (1 - weight) * visual + weight * brute_speech(sentences, query, feats.subtitles, feats.num_clips)
        rows.append((float(curve.max()), rec.key, rec.video_id, curve))
    order = order_cosines_with_ties([r[0] for r in rows], [[r[1] for r in rows]])
    return [{"video_id": rows[i][2], "score": rows[i][0], "curve": rows[i][3]} for i in order[:top_k]]


def test_speech_curve_equals_clip_by_clip_reference(sentences):
    subs = [Subtitle(0.2, 2.9, "she hands him the keys"), Subtitle(3.1, 7.0, "the car door opens"), Subtitle(9.0, 9.5, "look")]
    n = 8  # clips 12 s: clips 5 and 7 have no words, clip 6 has the short cue
    owners = align_subtitles(subs, n, 1.5).clip_to_subtitle
    cues = sentences.encode([s.text for s in subs])  # batched, padded
    got = speech_curve(sentences.encode([QUERY])[0], cues, owners)
    np.testing.assert_allclose(got, brute_speech(sentences, QUERY, subs, n), atol=1e-5)
    assert got[owners < 0].tolist() == [0.0] * int((owners < 0).sum()) and (got >= 0).all()
    assert speech_curve(np.ones(4) / 2, np.zeros((0, 4)), np.full(3, -1)).tolist() == [0.0, 0.0, 0.0]


def test_fuse_is_the_stated_convex_combination():
    v, s = np.array([0.2, 0.3, -0.1]), np.array([0.0, 0.8, 0.5])
    np.testing.assert_allclose(fuse(v, s, 0.25), [0.15, 0.425, 0.05])
    np.testing.assert_array_equal(fuse(v, s, 0.0), v)
    np.testing.assert_array_equal(fuse(v, s, 1.0), s)


@pytest.mark.parametrize(("match", "weight"), [("both", 0.4), ("both", None), ("speech", None)])
def test_fused_search_equals_brute_force(library, sentences, match, weight):
    backend = load_backend("tiny").with_match(match, weight)
    w = {"speech": 1.0}.get(match, DEFAULT_SPEECH_WEIGHT if weight is None else weight)
    assert backend.speech_weight == w and "speech" in backend.name
    top_k = 3  # of 4: the candidate set (visual top-k + videos with words) must not lose one
    result = library.search(QUERY, backend, top_k_videos=top_k, moments_per_video=2)
    expected = brute_force(library, sentences, QUERY, w, top_k)
    assert [v.video_id for v in result.videos] == [e["video_id"] for e in expected]
    for got, exp in zip(result.videos, expected, strict=True):
        assert got.video_score == pytest.approx(exp["score"], abs=1e-5)
        np.testing.assert_allclose(got.similarity, exp["curve"], atol=1e-5)  # the curve shown = the fused one
        loc = localize_curve(got.similarity, max_spans=2)
        assert [(m.start, m.end) for m in got.moments] == [
            (float(got.clip_times[a, 0]), float(got.clip_times[b, 1])) for a, b, _ in loc.spans
        ]


def test_speech_only_gives_videos_without_words_zero(library):
    backend = load_backend("tiny").with_match("speech")
    result = library.search(QUERY, backend, top_k_videos=4, moments_per_video=1)
    silent = [v for v in result.videos if v.name == "silent.mp4"]
    assert silent and silent[0].video_score == 0.0 and not silent[0].similarity.any()
    assert result.videos[-1].name == "silent.mp4"  # every spoken video scores >= 0


def test_visual_mode_is_the_default_behaviour(library):
    plain = library.search(QUERY, load_backend("tiny"), top_k_videos=4, moments_per_video=2)
    visual = library.search(QUERY, load_backend("tiny").with_match("visual"), top_k_videos=4, moments_per_video=2)
    assert [(v.video_id, v.video_score) for v in plain.videos] == [(v.video_id, v.video_score) for v in visual.videos]
    assert [(m.video_id, m.start, m.end) for m in plain.moments] == [(m.video_id, m.start, m.end) for m in visual.moments]


def test_bad_match_settings_are_refused():
    backend = load_backend("tiny")
    with pytest.raises(QueryError, match="between 0 and 1"):
        backend.with_match("both", 1.5)
    with pytest.raises(QueryError, match="unknown match mode"):
        backend.with_match("audio")


def test_missing_sentence_encoder_weights_are_named(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from c2f.errors import MissingWeightsError

    monkeypatch.setenv("C2F_CHECKPOINTS", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(MissingWeightsError, match=r"model\.safetensors") as err:
        SentenceEncoder()
    assert str(Path(tmp_path) / "sentence" / "all-MiniLM-L6-v2") in str(err.value)


def test_cli_search_match_both_equals_the_api(library, capsys):
    import json

    from c2f.cli import main

    args = ["search", QUERY, "--library", str(library.root), "--mode", "tiny", "--top-k", "3"]
    assert main([*args, "--match", "both", "--speech-weight", "0.4", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    api = library.search(QUERY, load_backend("tiny").with_match("both", 0.4), top_k_videos=3)
    assert [v["video_id"] for v in printed["videos"]] == [v.video_id for v in api.videos]
    assert "speech (both, w=0.4)" in printed["backend"]
    assert main([*args, "--speech-weight", "2"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err

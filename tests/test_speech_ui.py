"""The transcript under the player: where the words come from, the found moment's cues marked."""

from __future__ import annotations

import re

from videogen import make_video, write_srt

from c2f.features import Subtitle, get_preset
from c2f.library import Library
from c2f.search import load_backend
from c2f.ui.transcript import result_transcript_html, source_label, transcript_html

CUES = [Subtitle(0.0, 1.0, "first"), Subtitle(1.2, 2.5, "in <the> moment"), Subtitle(2.6, 4.0, "also in"), Subtitle(5.0, 6.0, "after")]


def marked(page: str) -> list[str]:
    return [re.sub(r"<small>[^<]*</small>", "", m) for m in re.findall(r"<mark[^>]*>(.*?)</mark>", page)]


def test_cues_overlapping_the_moment_are_marked_and_escaped():
    page = transcript_html("a.mp4", CUES, None, "gradio_api/file=/m/a.mp4", (1.5, 3.0))
    assert marked(page) == ["in &lt;the&gt; moment", "also in"]
    assert page.count('data-t="') == 4 and 'data-t="5.000"' in page and "subtitle file" in page


def test_source_says_machine_made_with_model_and_language():
    src = {"kind": "transcript", "machine_made": True, "model": "whisper-base", "language": "en"}
    assert source_label(src, True) == "machine transcript (whisper-base, en)"
    assert source_label(None, True) == "subtitle file"
    assert source_label(src, False).startswith("no words")


def test_result_transcript_is_the_best_moments_video(tmp_path):
    folder = tmp_path / "v"
    make_video(folder / "a.mp4", segments=[("black", 3.0), ("red", 3.0)])
    write_srt(folder / "a.srt", [(c.start, c.end, c.text) for c in CUES])
    lib = Library(tmp_path / "lib", settings=get_preset("tiny-clip-only"))
    assert lib.add(folder).ok
    result = lib.search("a red screen", load_backend("tiny"), top_k_videos=1, moments_per_video=1)
    top = result.moments[0]
    page = result_transcript_html(lib, result, {top.video_id: "url"})
    expected = [c.text.replace("<", "&lt;").replace(">", "&gt;") for c in CUES if c.start < top.end and c.end > top.start]
    assert marked(page) == expected and "Words of a.mp4" in page
    assert result_transcript_html(lib, type(result)("q", "b", [], []), {}) == '<div id="transcript"></div>'


def test_the_words_shown_are_bounded_around_the_moment():
    from c2f.ui.transcript import MAX_CUE_CHARS, MAX_CUES

    cues = [Subtitle(float(k), k + 0.5, f"cue {k} " + "x" * (1000 if k == 5000 else 0)) for k in range(20_000)]
    page = transcript_html("long.mp4", cues, None, "u", (5000.2, 5001.2))
    starts = [float(t) for t in re.findall(r'data-t="([0-9.]+)"', page)]
    assert len(starts) == MAX_CUES and starts == sorted(starts) and 5000.0 in starts
    assert starts[0] == 5000 - MAX_CUES // 2  # centred on the moment's first cue
    assert marked(page) == ["cue 5000 " + "x" * (MAX_CUE_CHARS - len("cue 5000 ") - 1) + "…", "cue 5001 "]
    assert f"(the {MAX_CUES} cues around the moment, of 20000)" in page and len(page) < 40_000
    assert len(re.findall("data-t=", transcript_html("a", cues[:50], None, "u", (1.0, 2.0)))) == 50


def test_no_words_block():
    assert "no words" in transcript_html("x.mp4", [], None, "u", (0.0, 1.0))


def test_service_transcribes_on_upload_and_searches_speech(tmp_path):
    from speechgen import make_speech_video

    from c2f.features import load_features
    from c2f.ui.service import AppConfig, AppService

    service = AppService(AppConfig(library_root=tmp_path / "lib", mode="tiny"))
    talk = tmp_path / "talk.mp4"
    make_speech_video(talk, sentences=("she hands him the keys",))
    outcome = service.index("tiny", [talk], transcribe=True)
    assert outcome.added == ["talk.mp4"] and not outcome.failed
    library = service.collection("tiny", None).library
    rec = library.list()[0]
    source = load_features(library.feature_path(rec.video_id)).subtitle_source
    assert source["machine_made"] and source["model"] == service.backends.transcriber("tiny").label
    result, _ = service.search("tiny", "the keys", match="both")
    assert "speech (both" in result.backend_name and result.videos[0].name == "talk.mp4"

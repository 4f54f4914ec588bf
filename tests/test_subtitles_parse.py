"""Real-world .srt/.vtt quirks the parser must survive, and errors that name the line."""

from __future__ import annotations

import pytest

from c2f.errors import SubtitleError
from c2f.features.store import Subtitle
from c2f.features.subtitles import read_subtitles


def test_srt_without_index_lines_and_dot_millis(tmp_path):
    p = tmp_path / "a.srt"
    p.write_text("00:00:01.000 --> 00:00:02.000\nfirst\n\n00:00:02,5 --> 00:00:03,25\nsecond\n")
    assert read_subtitles(p) == [Subtitle(1.0, 2.0, "first"), Subtitle(2.5, 3.25, "second")]


def test_srt_cues_without_blank_lines_between(tmp_path):
    # Some tools forget the blank line: the next cue's index must not end up in the text.
    p = tmp_path / "a.srt"
    p.write_text("1\n00:00:00,000 --> 00:00:01,000\nA\n2\n00:00:01,000 --> 00:00:02,000\nB\n")
    assert read_subtitles(p) == [Subtitle(0.0, 1.0, "A"), Subtitle(1.0, 2.0, "B")]


def test_srt_old_mac_line_endings_and_ass_tags(tmp_path):
    p = tmp_path / "a.srt"
    p.write_bytes(b"1\r00:00:04,000 --> 00:00:05,000\r{\\an8}<b>Top</b> line\r")
    assert read_subtitles(p) == [Subtitle(4.0, 5.0, "Top line")]


def test_out_of_order_cues_are_sorted(tmp_path):
    p = tmp_path / "a.srt"
    p.write_text("2\n00:00:05,000 --> 00:00:06,000\nlater\n\n1\n00:00:01,000 --> 00:00:02,000\nearlier\n")
    assert [s.text for s in read_subtitles(p)] == ["earlier", "later"]


def test_vtt_identifiers_entities_and_voice_spans(tmp_path):
    p = tmp_path / "a.vtt"
    p.write_text(
        "\ufeffWEBVTT\nKind: captions\nLanguage: en\n\n"
        "cue-1\n00:00:01.000 --> 00:00:02.500 line:0 size:50%\n<c.yellow>Tom &amp; Jerry</c>\n"
        "&lt;laughs&gt;\n\n"
        "NOTE\n00:00:09.000 --> 00:00:10.000 is inside a comment block\n\n"
        "00:00:03.000 --> 00:00:04.000\n<00:00:03.500>karaoke\n"
    )
    assert read_subtitles(p) == [
        Subtitle(1.0, 2.5, "Tom & Jerry <laughs>"),
        Subtitle(3.0, 4.0, "karaoke"),
    ]


def test_empty_vtt_has_no_cues(tmp_path):
    p = tmp_path / "a.vtt"
    p.write_text("WEBVTT\n\n")
    assert read_subtitles(p) == []


def test_unreadable_timing_names_the_line(tmp_path):
    p = tmp_path / "a.srt"
    p.write_text("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 --> soon\nbroken\n")
    with pytest.raises(SubtitleError, match="line 6"):
        read_subtitles(p)


def test_missing_file_is_a_subtitle_error(tmp_path):
    with pytest.raises(SubtitleError, match="cannot read"):
        read_subtitles(tmp_path / "nope.srt")

"""Real-world .srt/.vtt quirks the parser must survive, and errors that name the line."""

from __future__ import annotations

import pytest

from c2f.errors import SubtitleError
from c2f.features.store import Subtitle
from c2f.features.subtitles import read_subtitles, read_usable_subtitles


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


# --- encodings: a BOM first, then UTF-8, then cp1252, then Latin-1 ---------------------------------
SRT = "1\n00:00:01,000 --> 00:00:02,000\nCafé “naïve” – déjà vu\n\n2\n00:00:03,000 --> 00:00:04,000\nÀ bientôt\n"
CUES = [Subtitle(1.0, 2.0, "Café “naïve” – déjà vu"), Subtitle(3.0, 4.0, "À bientôt")]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_unicode_encodings_with_or_without_bom(tmp_path, encoding):
    # Python's "utf-16"/"utf-32" write a BOM; "-le"/"-be" write none (recognised by their NUL bytes)
    p = tmp_path / "a.srt"
    p.write_bytes(SRT.encode(encoding))
    assert read_subtitles(p) == CUES


def test_utf16_big_endian_with_bom_and_crlf(tmp_path):
    p = tmp_path / "a.vtt"
    p.write_bytes(b"\xfe\xff" + ("WEBVTT\r\n\r\n" + SRT.replace("\n", "\r\n")).encode("utf-16-be"))
    assert read_subtitles(p) == CUES


def test_windows_cp1252_file(tmp_path):
    p = tmp_path / "a.srt"
    p.write_bytes(SRT.encode("cp1252"))  # curly quotes and the en dash are 0x93 0x94 0x96 there
    assert read_subtitles(p) == CUES


def test_latin1_file(tmp_path):
    p = tmp_path / "a.srt"
    p.write_bytes("1\n00:00:01,000 --> 00:00:02,000\nGarçon, ¿qué tal? ½\n".encode("latin-1"))
    assert read_subtitles(p) == [Subtitle(1.0, 2.0, "Garçon, ¿qué tal? ½")]


def test_bytes_undefined_in_cp1252_fall_back_to_latin1(tmp_path):
    p = tmp_path / "a.srt"
    p.write_bytes(b"1\n00:00:01,000 --> 00:00:02,000\nA\x81B \xe9\n")  # 0x81 has no cp1252 character
    assert read_subtitles(p) == [Subtitle(1.0, 2.0, "A\x81B é")]


# --- malformed files: the video keeps its place, the reason is given -------------------------------
def test_garbage_bytes(tmp_path):
    p = tmp_path / "a.srt"
    p.write_bytes(bytes(range(256)) * 8 + b"\x00\x01\x02")
    with pytest.raises(SubtitleError, match="no subtitle cue found"):
        read_subtitles(p)
    cues, note = read_usable_subtitles(p)
    assert cues == [] and note.startswith(f"{p}: no subtitle cue found") and "\n" not in note


def test_one_bad_cue_among_good_ones_keeps_the_good_ones(tmp_path):
    p = tmp_path / "a.srt"
    p.write_text(
        "1\n00:00:01,000 --> 00:00:02,000\nok\n\n"
        "2\n00:00:03,000 --> soon\nbroken\n\n"
        "3\n00:00:09,000 --> 00:00:08,000\nbackwards\n\n"
        "4\n00:00:05,000 --> 00:00:06,000\nalso ok\n"
    )
    cues, note = read_usable_subtitles(p)
    assert cues == [Subtitle(1.0, 2.0, "ok"), Subtitle(5.0, 6.0, "also ok")]
    assert note == f"{p}: line 6: unreadable cue timing '00:00:03,000 --> soon' (and 1 more); 2 cue(s) skipped, 2 kept"


def test_clean_file_has_no_note_and_unreadable_file_has_one(tmp_path):
    p = tmp_path / "a.srt"
    p.write_text(SRT)
    assert read_usable_subtitles(p) == (CUES, None)
    cues, note = read_usable_subtitles(tmp_path / "missing.srt")
    assert cues == [] and note.startswith(f"{tmp_path / 'missing.srt'}: cannot read subtitles")

"""Subtitle parsing (.srt/.vtt quirks) and the HERO clip alignment, against hand-worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from c2f.errors import SubtitleError
from c2f.features.store import Subtitle
from c2f.features.subtitles import align_subtitles, find_sidecar_subtitles, read_subtitles


def test_srt_with_bom_crlf_tags_and_multiline(tmp_path):
    p = tmp_path / "a.srt"
    p.write_bytes(
        "\ufeff1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>Hello</i> there\r\nfriend\r\n\r\n"
        "2\r\n00:00:03,2 --> 00:00:04,000\r\nBye\r\n".encode()
    )
    subs = read_subtitles(p)
    assert subs == [Subtitle(1.0, 2.5, "Hello there friend"), Subtitle(3.2, 4.0, "Bye")]


def test_vtt_header_note_style_and_cue_settings(tmp_path):
    p = tmp_path / "a.vtt"
    p.write_text(
        "WEBVTT - title\n\nSTYLE\n::cue { color: red }\n\nNOTE a comment\nspanning lines\n\n"
        "intro\n00:00.500 --> 00:02.000 align:start position:10%\n<v Bob>Hi</v>\n\n"
        "01:00:00.000 --> 01:00:01.250\nLate\n"
    )
    assert read_subtitles(p) == [Subtitle(0.5, 2.0, "Hi"), Subtitle(3600.0, 3601.25, "Late")]


def test_bad_subtitles_are_reported(tmp_path):
    p = tmp_path / "bad.srt"
    p.write_text("1\nthis is not a time line\nhello\n")
    with pytest.raises(SubtitleError, match="no subtitle cue"):
        read_subtitles(p)
    p.write_text("1\n00:00:05,000 --> 00:00:01,000\nbackwards\n")
    with pytest.raises(SubtitleError, match="line 2"):
        read_subtitles(p)


def test_sidecar_lookup(tmp_path):
    (tmp_path / "movie.mp4").write_bytes(b"x")
    assert find_sidecar_subtitles(tmp_path / "movie.mp4") is None
    (tmp_path / "movie.en.vtt").write_text("WEBVTT\n")
    assert find_sidecar_subtitles(tmp_path / "movie.mp4") == tmp_path / "movie.en.vtt"
    (tmp_path / "movie.srt").write_text("")
    assert find_sidecar_subtitles(tmp_path / "movie.mp4") == tmp_path / "movie.srt"


def test_hero_alignment_hand_worked():
    # clips of 1.5 s: 0 [0,1.5) 1 [1.5,3) 2 [3,4.5) 3 [4.5,6) 4 [6,7.5) 5 [7.5,9) ... 11
    subs = [Subtitle(0.2, 2.0, "a"), Subtitle(2.5, 5.0, "b"), Subtitle(9.1, 9.4, "c")]
    al = align_subtitles(subs, num_clips=12)
    # a covers clips 0..1, b covers 1..3; clip 1 [1.5,3): IoU(a)=0.5/2.8, IoU(b)=0.5/3.5 -> a
    # c covers clip 6 only (floor(9.1/1.5)=6, ceil(9.4/1.5)-1=6)
    np.testing.assert_array_equal(al.clip_to_subtitle, [0, 0, 1, 1, -1, -1, 2, -1, -1, -1, -1, -1])
    segs = [(k, c.tolist()) for k, c in al.segments]
    assert segs == [(0, [0, 1]), (1, [2, 3]), (-1, [4, 5]), (2, [6]), (-1, [7, 8, 9, 10, 11])]


def test_no_subtitles_gives_groups_of_five():
    al = align_subtitles([], num_clips=12)
    assert [c.tolist() for _, c in al.segments] == [list(range(5)), list(range(5, 10)), [10, 11]]
    assert all(k == -1 for k, _ in al.segments)


def test_alignment_edges_boundaries_ties_and_overrun():
    # [1.5, 3.0] ends exactly on a boundary: ceil(3.0/1.5)-1 = 1, so it covers clip 1 only.
    # Two identical cues tie on IoU: the earlier one (index 1) keeps the clip.
    # [10, 20] runs past a 12 s video (8 clips): it covers clips 6 and 7, never a clip 8.
    subs = [
        Subtitle(1.5, 3.0, "x"),
        Subtitle(4.5, 6.0, "y"),
        Subtitle(4.5, 6.0, "y again"),
        Subtitle(10, 20, "z"),
    ]
    al = align_subtitles(subs, num_clips=8)
    np.testing.assert_array_equal(al.clip_to_subtitle, [-1, 0, -1, 1, -1, -1, 3, 3])
    assert [(k, c.tolist()) for k, c in al.segments] == [
        (-1, [0]),
        (0, [1]),
        (-1, [2]),
        (1, [3]),
        (-1, [4, 5]),
        (3, [6, 7]),
    ]


def test_alignment_long_subtitle_loses_clips_to_a_tighter_one():
    # long [0, 9] covers clips 0..5; short [3.2, 4.4] covers clip 2 [3, 4.5):
    # IoU(long, clip 2) = 1.5/9 = 0.17 < IoU(short, clip 2) = 1.2/1.5 = 0.8 -> clip 2 is short's,
    # which splits long's clips into two segments with the same subtitle index.
    al = align_subtitles([Subtitle(0, 9, "long"), Subtitle(3.2, 4.4, "short")], num_clips=6)
    np.testing.assert_array_equal(al.clip_to_subtitle, [0, 0, 1, 0, 0, 0])
    assert [(k, c.tolist()) for k, c in al.segments] == [(0, [0, 1]), (1, [2]), (0, [3, 4, 5])]


def test_alignment_segments_cover_every_clip_once():
    rng = np.random.default_rng(0)
    starts = np.sort(rng.uniform(0, 60, 15))
    subs = [Subtitle(float(s), float(s + rng.uniform(0.2, 6)), str(i)) for i, s in enumerate(starts)]
    al = align_subtitles(subs, num_clips=40)
    joined = np.concatenate([c for _, c in al.segments])
    np.testing.assert_array_equal(joined, np.arange(40))
    for k, clips in al.segments:
        assert (al.clip_to_subtitle[clips] == k).all()
        assert k >= 0 or len(clips) <= 5

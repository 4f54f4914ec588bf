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


def segments_of(al):
    return [(k, c.tolist()) for k, c in al.segments]


def test_hero_alignment_hand_worked():
    # clips of 1.5 s: 0 [0,1.5) 1 [1.5,3) 2 [3,4.5) 3 [4.5,6) 4 [6,7.5) 5 [7.5,9) ... 11
    subs = [Subtitle(0.2, 2.0, "a"), Subtitle(2.5, 5.0, "b"), Subtitle(9.1, 9.4, "c")]
    al = align_subtitles(subs, num_clips=12)
    # a covers clips 0..1, b covers 1..3; clip 1 [1.5,3): IoU(a)=0.5/2.8, IoU(b)=0.5/3.5 -> a
    # c covers clip 6 only (floor(9.1/1.5)=6, ceil(9.4/1.5)-1=6)
    np.testing.assert_array_equal(al.clip_to_subtitle, [0, 0, 1, 1, -1, -1, 2, -1, -1, -1, -1, -1])
    # one segment per subtitle; unmatched clips go through no f_cross pass (HERO: zeros there)
    assert segments_of(al) == [(0, [0, 1]), (1, [2, 3]), (2, [6])]


def test_no_subtitles_gives_groups_of_five():
    al = align_subtitles([], num_clips=12)
    assert [c.tolist() for _, c in al.segments] == [list(range(5)), list(range(5, 10)), [10, 11]]
    assert all(k == -1 for k, _ in al.segments)


def test_alignment_edges_boundaries_ties_and_overrun():
    # [1.5, 3.0] ends exactly on a boundary: ceil(3.0/1.5)-1 = 1, so it covers clip 1 only.
    # Two identical cues tie on IoU: the earlier one (index 1) keeps the clip; the other owns no
    # clip and has no segment. [10, 20] runs past a 12 s video (8 clips): clips 6 and 7, no clip 8.
    subs = [
        Subtitle(1.5, 3.0, "x"),
        Subtitle(4.5, 6.0, "y"),
        Subtitle(4.5, 6.0, "y again"),
        Subtitle(10, 20, "z"),
    ]
    al = align_subtitles(subs, num_clips=8)
    np.testing.assert_array_equal(al.clip_to_subtitle, [-1, 0, -1, 1, -1, -1, 3, 3])
    assert segments_of(al) == [(0, [1]), (1, [3]), (3, [6, 7])]


def test_no_clip_is_forced_on_a_subtitle():
    # A zero-length cue on a clip boundary covers floor(3/1.5) .. ceil(3/1.5)-1 = 2..1: no clip
    # (C2F used to force one). A cue starting at or after the video's end (6 s) covers none either.
    subs = [Subtitle(0.1, 1.0, "a"), Subtitle(3.0, 3.0, "blink"), Subtitle(6.0, 7.0, "after")]
    al = align_subtitles(subs, num_clips=4)
    np.testing.assert_array_equal(al.clip_to_subtitle, [0, -1, -1, -1])
    assert segments_of(al) == [(0, [0])]


def test_overlong_last_subtitle_keeps_its_first_eleven_clips():
    # 30 s video = 20 clips. The last cue [3, 40] lasts min(40, 30) - 3 = 27 s > 16 s: of its
    # clips 2..19 (floor(3/1.5) = 2; the rest lie past the video) it keeps 2..12, the first 11.
    subs = [Subtitle(0.5, 2.0, "hi"), Subtitle(3.0, 40.0, "credits")]
    al = align_subtitles(subs, num_clips=20)
    np.testing.assert_array_equal(al.clip_to_subtitle, [0, 0] + [1] * 11 + [-1] * 7)
    assert segments_of(al) == [(0, [0, 1]), (1, list(range(2, 13)))]


def test_only_the_last_subtitle_is_cut_and_its_length_ends_with_the_video():
    # HERO tests the index of the last cue of the file: [3, 40] followed by a cue starting after
    # the video's end is not the last one, so it keeps all its clips 2..19.
    al = align_subtitles([Subtitle(3.0, 40.0, "long"), Subtitle(41.0, 42.0, "late")], num_clips=20)
    np.testing.assert_array_equal(al.clip_to_subtitle, [-1, -1] + [0] * 18)
    # last cue [20, 40] in a 30 s video: min(40, 30) - 20 = 10 s <= 16 s: clips 13..19 all kept
    al = align_subtitles([Subtitle(20.0, 40.0, "tail")], num_clips=20)
    np.testing.assert_array_equal(al.clip_to_subtitle, [-1] * 13 + [0] * 7)
    # the cut counts from the cue's own first clip: [0, 25] keeps clips 0..10 of 0..16
    al = align_subtitles([Subtitle(0.0, 25.0, "long")], num_clips=20)
    np.testing.assert_array_equal(al.clip_to_subtitle, [0] * 11 + [-1] * 9)


def test_a_subtitle_keeps_its_clips_around_a_tighter_one_in_one_segment():
    # long [0, 9] covers clips 0..5; short [3.2, 4.4] covers clip 2 [3, 4.5):
    # IoU(long, clip 2) = 1.5/9 = 0.17 < IoU(short, clip 2) = 1.2/1.5 = 0.8 -> clip 2 is short's.
    # HERO: long's clips 0, 1, 3, 4, 5 are still one segment (one f_cross pass with its text).
    al = align_subtitles([Subtitle(0, 9, "long"), Subtitle(3.2, 4.4, "short")], num_clips=6)
    np.testing.assert_array_equal(al.clip_to_subtitle, [0, 0, 1, 0, 0, 0])
    assert segments_of(al) == [(0, [0, 1, 3, 4, 5]), (1, [2])]


def test_zero_iou_clip_goes_to_its_own_subtitle():
    # [2.0, 2.0] has zero length off a boundary: its only clip is 1 (floor = ceil - 1 = 1) at IoU 0.
    # It owns that clip; HERO's loop would give clip 1 to subtitle 0, which does not cover it.
    al = align_subtitles([Subtitle(0.1, 0.5, "a"), Subtitle(2.0, 2.0, "b")], num_clips=3)
    np.testing.assert_array_equal(al.clip_to_subtitle, [0, 1, -1])


def hero_reference(subs, num_clips, cs=1.5):
    """HERO's process_single_vid_sub, step by step, on subtitles sorted by start (all-zero IoU:
    the first candidate, see test_zero_iou_clip_goes_to_its_own_subtitle)."""
    n_sec = cs * num_clips
    sub2frames = {}
    for k, s in enumerate(subs):
        frames = list(range(int(np.floor(s.start / cs)), int(np.ceil(s.end / cs))))
        if s.start >= n_sec:
            continue
        if k == len(subs) - 1 and min(s.end, n_sec) - s.start > 16:
            frames = frames[:11]
        sub2frames[k] = frames
    owner = []
    for f in range(num_clips):
        cands = [k for k, v in sub2frames.items() if f in v]
        best_k, best = (cands[0] if cands else -1), 0.0
        for k in cands:
            a, b = subs[k].start / cs, subs[k].end / cs
            iou = 0.0 if min(f + 1, b) <= max(f, a) else (min(f + 1, b) - max(f, a)) / (max(f + 1, b) - min(f, a))
            if iou > best:
                best, best_k = iou, k
        owner.append(best_k)
    segs = [(k, [f for f in range(num_clips) if owner[f] == k]) for k in range(len(subs))]
    return owner, [(k, c) for k, c in segs if c]


@pytest.mark.parametrize("seed", range(5))
def test_alignment_equals_heros_procedure_on_random_subtitles(seed):
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.uniform(0, 70, 15))
    lengths = rng.choice([0.0, 0.4, 1.5, 3.0, 8.0, 25.0], size=15)
    subs = [Subtitle(float(s), float(s + d), str(i)) for i, (s, d) in enumerate(zip(starts, lengths, strict=True))]
    owner, segs = hero_reference(subs, 40)
    al = align_subtitles(subs, num_clips=40)
    np.testing.assert_array_equal(al.clip_to_subtitle, owner)
    assert segments_of(al) == segs
    for k, clips in al.segments:  # every owned clip in exactly one segment, its owner's
        assert k >= 0 and (al.clip_to_subtitle[clips] == k).all()
    covered = np.concatenate([c for _, c in al.segments])
    assert sorted(covered.tolist()) == np.flatnonzero(al.clip_to_subtitle >= 0).tolist()

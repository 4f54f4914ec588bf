"""Taking the moments away: timecodes hand-checked at 25, 29.97 (drop-frame) and 30 fps, CMX 3600
EDLs read back frame-exactly by our reader and by OpenTimelineIO's, CSV/JSON rows, and clips cut
from real videos (re-encoded: exactly the moment's frames; stream copy: from a keyframe)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from videogen import make_offset_copy, make_video

from c2f.errors import C2FError
from c2f.export import ExportMoment, export_moments
from c2f.export.edl import EdlEvent, parse_edl, write_edl
from c2f.export.timecode import Rate, TimecodeError, frame_seconds, from_timecode, moment_frames, to_timecode
from c2f.video.decode import iter_frames
from c2f.video.probe import probe_video

NTSC = Fraction(30000, 1001)
RATES = {"25": 25, "29.97": NTSC, "30": 30}


@pytest.mark.parametrize(
    ("fps", "frame", "timecode"),
    [
        (25, 0, "00:00:00:00"),
        (25, 37, "00:00:01:12"),
        (25, 90_000, "01:00:00:00"),
        (30, 108_000, "01:00:00:00"),
        (30, 1800, "00:01:00:00"),
        (NTSC, 1799, "00:00:59;29"),
        (NTSC, 1800, "00:01:00;02"),  # ;00 and ;01 are skipped at minute 1
        (NTSC, 3598, "00:02:00;02"),
        (NTSC, 17_982, "00:10:00;00"),  # not at minute 10
        (NTSC, 107_892, "01:00:00;00"),  # one hour of 29.97 is 107892 frames
        (Fraction(60000, 1001), 3600, "00:01:00;04"),  # 59.94 drops four labels
        (Fraction(24000, 1001), 86_400, "01:00:00:00"),  # 23.976 counts non-drop
    ],
)
def test_timecodes_by_hand(fps, frame: int, timecode: str) -> None:
    rate = Rate.of(fps)
    assert to_timecode(frame, rate) == timecode
    assert from_timecode(timecode, rate) == frame


@pytest.mark.parametrize("label", list(RATES))
def test_every_frame_has_one_timecode(label: str) -> None:
    rate = Rate.of(float(RATES[label]))  # a probe's float finds the exact rate
    assert rate.fps == RATES[label] and rate.label == label and rate.drop_frame == (label == "29.97")
    frames = np.arange(0, 40_000)
    codes = [to_timecode(int(f), rate) for f in frames]
    assert len(set(codes)) == len(codes)
    assert [from_timecode(c, rate) for c in codes] == frames.tolist()
    if rate.drop_frame:  # on the wall clock: 00:10:00;00 is 600 s to 1 ms (non-drop would be 0.6 s late)
        assert abs(from_timecode("00:10:00;00", rate) / rate.fps - 600) < Fraction(1, 1000)
        with pytest.raises(TimecodeError, match="drop-frame timecode skips"):
            from_timecode("00:01:00;01", rate)
    with pytest.raises(TimecodeError, match="does not exist"):
        from_timecode(f"00:00:00:{rate.base:02d}", rate)
    with pytest.raises(TimecodeError, match="is not a timecode"):
        from_timecode("1:2:3", rate)


def test_moment_frames_are_those_that_begin_inside_it() -> None:
    assert moment_frames(1.5, 3.0, Rate.of(25)) == (38, 75)  # 37.5 -> the frame starting at 1.52 s
    assert moment_frames(1.5, 3.0, Rate.of(30)) == (45, 90)
    assert moment_frames(59.9, 61.0, Rate.of(NTSC)) == (1796, 1829)
    assert moment_frames(2.0, 2.001, Rate.of(25)) == (50, 51)  # never empty
    for label, fps in RATES.items():
        rate = Rate.of(fps)
        for start in np.linspace(0, 100, 37):
            first, _ = moment_frames(start, start + 1, rate)
            assert start - 1e-9 <= frame_seconds(first, rate) < start + 1 / float(fps), label


def edl_events(n: int) -> list[EdlEvent]:
    return [EdlEvent(f"clip {i}.mp4", 1790 + 97 * i, 1790 + 97 * i + 13 + i, i % 2 == 0, f"score {i}") for i in range(n)]


@pytest.mark.parametrize("label", list(RATES))
def test_edl_round_trip_frame_exact(label: str) -> None:
    """Source in/out across minute boundaries (drop-frame labels skipped there) read back to the
    frame by our reader and by OpenTimelineIO's CMX 3600 adapter; records back to back from 1 h."""
    rate = Rate.of(RATES[label])
    events = edl_events(40)
    text = write_edl("C2F a café at night", events, rate)
    assert text.startswith("TITLE: C2F a cafe at night\r\nFCM: ") and text.isascii()
    assert ("FCM: DROP FRAME" in text) == rate.drop_frame and (";" in text) == rate.drop_frame
    parsed = parse_edl(text, rate)
    assert parsed.title == "C2F a cafe at night" and parsed.drop_frame == rate.drop_frame
    record = from_timecode("01:00:00:00", Rate(rate.fps, rate.base, False)) if not rate.drop_frame else 107_892
    for i, (ev, got) in enumerate(zip(events, parsed.events, strict=True)):
        assert (got.number, got.reel, got.clip_name) == (i + 1, "AX", ev.clip_name)
        assert (got.source_in, got.source_out) == (ev.source_in, ev.source_out)
        assert got.track == ("AA/V" if ev.has_audio else "V") and got.comments == [ev.comment]
        assert (got.record_in, got.record_out) == (record, record + ev.source_out - ev.source_in)
        record = got.record_out
    timeline = otio.adapters.read_from_string(text, "cmx_3600", rate=float(rate.fps))
    (video,) = timeline.video_tracks()  # AA/V events also give audio tracks
    clips = list(video.find_clips())
    assert [c.name for c in clips] == [ev.clip_name for ev in events]
    for clip, ev in zip(clips, events, strict=True):
        start, duration = clip.source_range.start_time, clip.source_range.duration
        assert round(start.to_frames()) == ev.source_in and round(duration.to_frames()) == ev.source_out - ev.source_in


def test_edl_refusals() -> None:
    rate = Rate.of(25)
    with pytest.raises(C2FError, match="at most 999 events"):
        write_edl("t", edl_events(1000), rate)
    with pytest.raises(C2FError, match="no moment"):
        write_edl("t", [], rate)
    with pytest.raises(C2FError, match="line 3: not a CMX 3600 event"):
        parse_edl("TITLE: x\nFCM: NON-DROP FRAME\n001 AX V C 00:00:00:00\n", rate)
    with pytest.raises(C2FError, match="line 3: '00:00:00:25' does not exist"):
        parse_edl("TITLE: x\n\n001  AX V C 00:00:00:25 00:00:01:00 01:00:00:00 01:00:00:01\n", rate)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Colour changes on frame boundaries at 25 and 30 fps (red 1 s, blue 1 s, green 1 s, with
    audio); a 62 s 29.97 video (past a drop-frame minute); a 25 fps file stamped 01:02:03:04."""
    d = tmp_path_factory.mktemp("export-videos")
    colours = [("red", 1.0), ("blue", 1.0), ("green", 1.0)]
    out = {
        "25": make_video(d / "v25.mp4", fps=25, segments=colours, audio=True),
        "30": make_video(d / "v30.mkv", fps=30, segments=colours),
        "29.97": make_video(d / "v2997.mp4", fps="30000/1001", seconds=62, size=(64, 48)),  # type: ignore[arg-type]
    }
    out["ts"] = make_offset_copy(out["25"], d / "offset.ts", 10.0)  # no index; audio starts before video
    stamped = d / "stamped.mp4"
    from videogen import _run

    _run(["-i", str(out["25"]), "-c", "copy", "-timecode", "01:02:03:04", str(stamped)])
    out["stamped"] = stamped
    return out


def moment(path: Path, start: float, end: float, score: float = 0.5, name: str | None = None) -> ExportMoment:
    return ExportMoment(path.stem, name or path.name, path, start, end, score)


def test_export_edl_from_real_videos(videos, tmp_path: Path) -> None:
    moments = [
        moment(videos["25"], 1.0, 2.0, 0.9),
        moment(videos["29.97"], 59.9, 61.0, 0.8),
        moment(videos["30"], 0.5, 2.25, 0.7),
        moment(videos["stamped"], 1.5, 3.0, 0.6, name="Caméra 1.mp4"),
        moment(videos["29.97"], 0.0, 1.5, 0.5),
    ]
    written = export_moments(moments, tmp_path, "edl", title="C2F a red car")
    assert sorted(p.name for p in written) == ["moments-25fps.edl", "moments-29.97fps.edl", "moments-30fps.edl"]
    by_rate = {p.name.split("-")[1].removesuffix("fps.edl"): p.read_text() for p in written}
    info = {path: probe_video(path) for path in {m.path for m in moments}}
    for label, text in by_rate.items():
        rate = Rate.of(RATES[label])
        mine = [m for m in moments if Rate.of(info[m.path].fps) == rate]
        parsed = parse_edl(text, rate)
        assert parsed.title == f"C2F a red car ({label} fps)"
        for m, ev in zip(mine, parsed.events, strict=True):
            first, stop = moment_frames(m.start, m.end, rate)
            offset = from_timecode("01:02:03:04", rate) if m.path == videos["stamped"] else 0
            assert (ev.source_in, ev.source_out) == (offset + first, offset + stop)
            assert ev.clip_name == m.name and ev.track == ("AA/V" if info[m.path].has_audio else "V")
            assert ev.comments == [f"C2F {m.video_id} score {m.score:.6f} {m.start:.3f}-{m.end:.3f} s"]
    # 59.9-61.0 s at 29.97: frames 1796-1828, across minute 1 (its labels start at ;02)
    assert "00:00:59;26 00:01:01;01" in by_rate["29.97"]


def test_export_csv_and_json(videos, tmp_path: Path) -> None:
    moments = [moment(videos["25"], 1.0, 2.0, 0.91234567, name='a, "quoted" name.mp4'), moment(videos["30"], 0.5, 1.25, 0.5)]
    (csv_path,) = export_moments(moments, tmp_path, "csv")
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert rows == [
        {"rank": "1", "video_id": "v25", "name": 'a, "quoted" name.mp4', "start": "1.0", "end": "2.0", "score": "0.912346"},
        {"rank": "2", "video_id": "v30", "name": "v30.mkv", "start": "0.5", "end": "1.25", "score": "0.5"},
    ]
    (json_path,) = export_moments(moments, tmp_path, "json", title="C2F q")
    data = json.loads(json_path.read_text())
    assert data["title"] == "C2F q" and [r["name"] for r in data["moments"]] == [r["name"] for r in rows]
    assert [(r["start"], r["end"], r["score"]) for r in data["moments"]] == [(1.0, 2.0, 0.912346), (0.5, 1.25, 0.5)]
    with pytest.raises(C2FError, match="unknown export format 'xml'"):
        export_moments(moments, tmp_path, "xml")
    with pytest.raises(C2FError, match="no moment to export"):
        export_moments([], tmp_path, "csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["moments.csv", "moments.json"]  # no temporary left


def frames_of(path: Path) -> tuple[np.ndarray, float]:
    """Every frame of a clip (mean RGB per frame) and its frame rate."""
    info = probe_video(path)
    chunks = list(iter_frames(path, info.fps, 16, info=info))
    return np.concatenate([c.frames.reshape(len(c.frames), -1, 3).mean(1) for c in chunks]), info.fps


def test_exact_clips_hold_exactly_the_moments_frames(videos, tmp_path: Path) -> None:
    moments = [
        moment(videos["25"], 1.0, 2.0),  # exactly the blue second
        moment(videos["30"], 1.0, 2.0),
        moment(videos["25"], 0.37, 1.91),  # off the frame grid
        moment(videos["29.97"], 59.9, 61.0),
    ]
    (zip_path,) = export_moments(moments, tmp_path, "clips", exact_cuts=True)
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "out")
        listed = list(csv.DictReader(io.StringIO(zf.read("moments.csv").decode())))
    assert names[0] == "moments.csv" and [r["file"] for r in listed] == names[1:]
    assert names[1:] == ["001_v25_1.00-2.00.mp4", "002_v30_1.00-2.00.mp4", "003_v25_0.37-1.91.mp4", "004_v2997_59.90-61.00.mp4"]
    for m, name in zip(moments, names[1:], strict=True):
        clip = tmp_path / "out" / name
        fps = float(Rate.of(probe_video(m.path).fps).fps)
        first, stop = moment_frames(m.start, m.end, Rate.of(fps))
        colours, clip_fps = frames_of(clip)
        assert clip_fps == pytest.approx(fps, rel=1e-3)
        assert len(colours) == stop - first  # the moment's frames, no more, no fewer
        assert abs(len(colours) / fps - (m.end - m.start)) <= 1 / fps  # the asked duration within a frame
        assert abs(probe_video(clip).duration - (m.end - m.start)) <= 1 / fps
    blue25, _ = frames_of(tmp_path / "out" / names[1])
    blue30, _ = frames_of(tmp_path / "out" / names[2])
    for colours in (blue25, blue30):  # first and last frame of the blue second are blue
        assert (colours[:, 2] > 200).all() and (colours[:, 0] < 60).all()
    assert probe_video(tmp_path / "out" / names[1]).has_audio


def test_fast_clips_are_stream_copies_from_a_keyframe(videos, tmp_path: Path) -> None:
    moments = [moment(videos["30"], 1.0, 2.0), moment(videos["25"], 1.5, 2.5)]
    (zip_path,) = export_moments(moments, tmp_path, "clips")
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(tmp_path / "out")
        names = zf.namelist()[1:]
    assert names == ["001_v30_1.00-2.00.mkv", "002_v25_1.50-2.50.mp4"]  # the sources' containers
    for m, name in zip(moments, names, strict=True):
        info, source = probe_video(tmp_path / "out" / name), probe_video(m.path)
        assert info.codec == source.codec  # copied, not re-encoded
        assert info.duration >= m.end - m.start - 1 / source.fps  # at least the moment (from a keyframe before it)


def test_cuts_from_a_container_without_index(videos, tmp_path: Path) -> None:
    """MPEG-TS (no index, one keyframe, audio starting before the video, timestamps from 11.4 s):
    the blue second exactly, whether asked exact or fast (a stream copy cannot start there)."""
    ts = probe_video(videos["ts"])
    assert ts.start_time > ts.format_start_time > 10 and ts.container == "mpegts"
    for exact in (True, False):
        (zip_path,) = export_moments([moment(videos["ts"], 1.0, 2.0)], tmp_path / str(exact), "clips", exact_cuts=exact)
        with zipfile.ZipFile(zip_path) as zf:
            (name,) = zf.namelist()[1:]
            zf.extractall(tmp_path / str(exact))
        assert name == "001_offset_1.00-2.00.mp4"
        colours, _ = frames_of(tmp_path / str(exact) / name)
        assert len(colours) == 25 and (colours[:, 2] > 200).all() and (colours[:, 0] < 60).all()


"""Take the found moments away: CSV, JSON, a CMX 3600 EDL for editors, or a zip of cut clips.

`export_moments(moments, out_dir, fmt)` writes one of FORMATS into `out_dir` (every file through a
temporary name and a rename) and returns the files written:
- "csv": moments.csv (rank, video_id, name, start, end, score);
- "json": moments.json ({"title", "moments": [...]}, the same fields);
- "edl": moments.edl, a CMX 3600 EDL (c2f.export.edl) at the videos' frame rate; moments of videos
  at several rates give one EDL per rate, moments-<rate>fps.edl;
- "clips": moments.zip, one clip per moment (c2f.export.clips: exact re-encoded cuts with
  `exact_cuts`, else stream copies starting at a keyframe) and moments.csv naming each clip's file.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from c2f.errors import C2FError, VideoError
from c2f.export.edl import EdlEvent, write_edl
from c2f.export.timecode import Rate, TimecodeError, from_timecode, moment_frames
from c2f.shared_files import atomic_path, atomic_write_text, temporary_folder

FORMATS = ("csv", "json", "edl", "clips")


@dataclass(frozen=True)
class ExportMoment:
    video_id: str
    name: str  # the source file's name, as the user knows it
    path: Path  # the video file (probed for the EDL, cut for clips)
    start: float  # seconds
    end: float  # seconds
    score: float


def _probe(path: Path):
    from c2f.video.probe import probe_video

    try:
        return probe_video(path)
    except VideoError as exc:
        raise C2FError(f"cannot export from {path.name}: {exc.reason}") from None


def export_moments(
    moments: Sequence[ExportMoment],
    out_dir: str | Path,
    fmt: str,
    exact_cuts: bool = False,
    title: str = "C2F moments",
) -> list[Path]:
    """Write `moments` (best first) as `fmt` into `out_dir`; the files written."""
    from c2f.export.tables import moments_csv, moments_json

    if fmt not in FORMATS:
        raise C2FError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    if not moments:
        raise C2FError("no moment to export")
    out = Path(out_dir)
    if fmt == "csv":
        return [atomic_write_text(out / "moments.csv", moments_csv(moments))]
    if fmt == "json":
        return [atomic_write_text(out / "moments.json", moments_json(moments, title))]
    if fmt == "edl":
        return write_edls(moments, out, title)
    return [write_clips_zip(moments, out / "moments.zip", exact_cuts)]


def write_edls(moments: Sequence[ExportMoment], out: Path, title: str) -> list[Path]:
    """One EDL per frame rate among the moments' videos (moments.edl when they share one)."""
    infos = {m.path: _probe(m.path) for m in moments}
    groups: dict[Rate, list[EdlEvent]] = {}
    for m in moments:
        info = infos[m.path]
        rate = Rate.of(info.fps)
        first, stop = moment_frames(m.start, m.end, rate)
        offset = 0
        if info.timecode:
            try:
                offset = from_timecode(info.timecode, rate)
            except TimecodeError:  # a tag that does not fit the rate: the file's own count from 0
                offset = 0
        comment = f"C2F {m.video_id} score {m.score:.6f} {m.start:.3f}-{m.end:.3f} s"
        groups.setdefault(rate, []).append(
            EdlEvent(m.name, offset + first, offset + stop, info.has_audio, comment)
        )
    written = []
    for rate, events in groups.items():
        name = "moments.edl" if len(groups) == 1 else f"moments-{rate.label}fps.edl"
        suffix = "" if len(groups) == 1 else f" ({rate.label} fps)"
        written.append(atomic_write_text(out / name, write_edl(title + suffix, events, rate)))
    return written


def write_clips_zip(moments: Sequence[ExportMoment], path: Path, exact: bool) -> Path:
    """A zip of one clip per moment plus moments.csv naming each clip's file (stored, not
    compressed: video is compressed already)."""
    from c2f.export.clips import clip_extension, cut_clip, safe_stem
    from c2f.export.tables import moments_csv

    path.parent.mkdir(parents=True, exist_ok=True)
    infos = {p: _probe(p) for p in dict.fromkeys(m.path for m in moments)}
    with temporary_folder(path.parent) as work:
        names = []
        for rank, m in enumerate(moments, 1):
            info = infos[m.path]
            name = f"{rank:03d}_{safe_stem(m.name)}_{m.start:.2f}-{m.end:.2f}{clip_extension(info, exact)}"
            cut_clip(info, m.start, m.end, Path(work) / name, exact)
            names.append(name)
        with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("moments.csv", moments_csv(moments, names))
            for name in names:
                zf.write(Path(work) / name, name)
    return path

"""Import of the released TVR data (VALUE / HERO features, TVR annotations and subtitles) into C2F
feature files with the `value` settings.

Length rule (facts of VALUE StarterCode `collect_video_feature_paths.py` / `convert_videodb.py` and
HERO `VideoFeatLmdb`): a video keeps N = min(length of each stream, id2nframe[vid] when given)
clips; every stream is cut to N before the 2D and 3D streams are concatenated [CLIP; S3D]. A video
missing from one stream is not imported (VALUE marks it corrupted). Every mismatch is reported.

Durations come from the annotation rows of the video (TVR's `duration`); a video no annotation
names gets N * clip_seconds, and the report counts those. Subtitles are stored raw in the feature
file; the HERO alignment (`align_subtitles`) runs when the file is read, as for extracted videos.

Resumable: each imported video appends one line to `import-tvr.log.jsonl` in the output folder; a
video whose feature file loads with the expected settings and whose log line has the same input
digest (settings, duration, subtitles) is skipped.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from c2f.data.lmdb_features import FeatureStore
from c2f.errors import C2FError, FeatureFileError
from c2f.features.settings import FeatureSettings
from c2f.features.store import ClipFeatures, Subtitle, VideoMeta, load_features, save_features

# VALUE's clip-vit_mil-nce layout (StarterCode utils/const.py VFEAT_DIM): 2D first, then 3D
VALUE_STREAMS: tuple[tuple[str, int], ...] = (("clip", 512), ("s3d", 1024))
LOG_NAME = "import-tvr.log.jsonl"
REPORT_NAME = "import-tvr.report.json"
LENGTH_RULE = (
    "N = min(clips of each stream, id2nframe[vid] when given); every stream cut to N, then "
    "concatenated [clip; s3d] (VALUE collect_video_feature_paths/convert_videodb, HERO VideoFeatLmdb)"
)


@dataclass
class StreamInput:
    """A feature store and the streams its vectors hold, in column order (e.g. [("clip", 512)], or
    both VALUE streams for a concatenated `clip-vit_mil-nce` database)."""

    store: FeatureStore
    streams: tuple[tuple[str, int], ...]

    @property
    def dim(self) -> int:
        return sum(d for _, d in self.streams)

    @property
    def label(self) -> str:
        return "+".join(n for n, _ in self.streams)


@dataclass
class ImportReport:
    rule: str = LENGTH_RULE
    videos_found: dict[str, int] = field(default_factory=dict)  # per input store
    imported: int = 0
    skipped_existing: int = 0
    missing_from_stream: dict[str, list[str]] = field(default_factory=dict)  # in another store, not this one
    unreadable: list[dict] = field(default_factory=list)  # {vid, why}
    length_mismatch_streams: list[dict] = field(default_factory=list)  # {vid, lengths, kept}
    length_mismatch_id2nframe: list[dict] = field(default_factory=list)  # {vid, stored, id2nframe, kept}
    clips_vs_duration: list[dict] = field(default_factory=list)  # {vid, clips, ceil(duration/cs)}
    durations_estimated: int = 0  # videos no annotation row names: duration = N * clip_seconds
    annotation_rows: int = 0
    annotation_bad_rows: list[dict] = field(default_factory=list)  # {file, line, why}
    annotations_missing_video: int = 0  # rows whose video has no imported features
    annotated_videos_missing: list[str] = field(default_factory=list)
    videos_with_subtitles: int = 0
    subtitles_past_end: int = 0  # subtitle lines starting after the last kept clip
    subtitle_videos_missing: list[str] = field(default_factory=list)  # subtitles but no features

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        def first(xs: Sequence, k: int = 5) -> str:
            return "" if not xs else f" (e.g. {', '.join(str(x) for x in list(xs)[:k])})"

        miss = sum(len(v) for v in self.missing_from_stream.values())
        lines = [
            f"videos found: {self.videos_found}",
            f"imported: {self.imported}, already imported (skipped): {self.skipped_existing}",
            f"missing from a stream (not imported): {miss}"
            + "".join(f"\n  {k}: {len(v)}{first(v)}" for k, v in self.missing_from_stream.items() if v),
            f"unreadable: {len(self.unreadable)}{first([u['vid'] for u in self.unreadable])}",
            f"length rule: {self.rule}",
            f"length mismatches between streams: {len(self.length_mismatch_streams)}"
            + first([f"{m['vid']} {m['lengths']}" for m in self.length_mismatch_streams]),
            f"length mismatches vs id2nframe: {len(self.length_mismatch_id2nframe)}"
            + first([f"{m['vid']} {m['stored']} vs {m['id2nframe']}" for m in self.length_mismatch_id2nframe]),
            f"clips != ceil(duration / clip_seconds): {len(self.clips_vs_duration)}"
            + first([f"{m['vid']} {m['clips']} vs {m['expected']}" for m in self.clips_vs_duration]),
            f"durations estimated as clips * clip_seconds (no annotation row): {self.durations_estimated}",
            f"annotation rows: {self.annotation_rows}, unreadable rows: {len(self.annotation_bad_rows)}",
            f"annotation rows whose video is missing: {self.annotations_missing_video} "
            f"({len(self.annotated_videos_missing)} videos){first(self.annotated_videos_missing)}",
            f"videos with subtitles: {self.videos_with_subtitles}, subtitle lines after the last clip: "
            f"{self.subtitles_past_end}, subtitled videos without features: "
            f"{len(self.subtitle_videos_missing)}{first(self.subtitle_videos_missing)}",
        ]
        return "\n".join(lines)


def read_jsonl(path: str | Path) -> Iterator[tuple[int, object | None, str | None]]:
    """(1-based line, parsed object or None, error or None) for each non-blank line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise C2FError(f"{path}: cannot read ({exc})") from None
    for ln, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield ln, json.loads(line), None
            except json.JSONDecodeError as exc:
                yield ln, None, f"invalid JSON ({exc.msg})"


def read_tvr_subtitles(path: str | Path) -> tuple[dict[str, list[Subtitle]], list[dict]]:
    """TVR subtitle jsonl: {"vid_name", "sub": [{"start", "end", "text"}, ...]} per line.
    Returns ({vid: subtitles sorted by time}, bad rows)."""
    subs: dict[str, list[Subtitle]] = {}
    bad: list[dict] = []
    for ln, row, err in read_jsonl(path):
        why = err
        if why is None:
            ok = isinstance(row, dict) and isinstance(row.get("vid_name"), str) and isinstance(row.get("sub"), list)
            why = None if ok else "expected {'vid_name': str, 'sub': [...]}"
        if why is None:
            try:
                items = [Subtitle(float(s["start"]), float(s["end"]), str(s["text"])) for s in row["sub"]]
            except (KeyError, TypeError, ValueError):
                why = "each 'sub' item needs start, end (seconds) and text"
        if why is not None:
            bad.append({"file": str(path), "line": ln, "why": why})
            continue
        subs[row["vid_name"]] = sorted(items, key=lambda s: (s.start, s.end))
    return subs, bad


def read_durations(paths: Sequence[str | Path], report: ImportReport) -> tuple[dict[str, float], dict[str, int]]:
    """Video durations and row counts per video from TVR annotation files (test files without `ts`
    still name their videos and durations)."""
    durations: dict[str, float] = {}
    rows: dict[str, int] = {}
    for path in paths:
        for ln, row, err in read_jsonl(path):
            vid = row.get("vid_name") if isinstance(row, dict) else None
            if err or not isinstance(vid, str):
                report.annotation_bad_rows.append({"file": str(path), "line": ln, "why": err or "no vid_name"})
                continue
            report.annotation_rows += 1
            rows[vid] = rows.get(vid, 0) + 1
            dur = row.get("duration")
            if isinstance(dur, (int, float)) and not isinstance(dur, bool) and math.isfinite(dur) and dur > 0:
                durations.setdefault(vid, float(dur))
    return durations, rows


def clip_times_for(num_clips: int, duration: float, clip_seconds: float) -> np.ndarray:
    """(N, 2) seconds on the 1.5 s grid; the last clip ends at the duration when the duration falls
    inside it (as extraction does), else clips keep the grid (features longer than the video)."""
    starts = np.arange(num_clips) * clip_seconds
    ends = starts + clip_seconds
    if num_clips and starts[-1] < duration:
        ends = np.minimum(ends, duration)
    return np.stack([starts, ends], axis=1)


def _input_digest(settings: FeatureSettings, duration: float, subs: list[Subtitle]) -> str:
    blob = json.dumps([settings.fingerprint(), duration, [asdict(s) for s in subs]], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _read_log(out_dir: Path) -> dict[str, dict]:
    log = out_dir / LOG_NAME
    done: dict[str, dict] = {}
    if log.is_file():
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                done[rec["vid"]] = rec
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut by a crash: that video is imported again
    return done


def _already_imported(path: Path, vid: str, settings: FeatureSettings, rec: dict | None, digest: str) -> bool:
    if rec is None or rec.get("digest") != digest or not path.is_file():
        return False
    try:
        feats = load_features(path, expected=settings)
    except C2FError:
        return False
    return feats.video_id == vid and feats.num_clips == rec.get("kept")


def _safe_name(vid: str) -> bool:
    return bool(vid) and "/" not in vid and "\\" not in vid and not vid.startswith(".")


def _account(report: ImportReport, rec: dict, durations: dict[str, float]) -> None:
    """Add one video's log record to the report (also for videos skipped on resume)."""
    lengths = rec["lengths"]
    if len(set(lengths.values())) > 1:
        report.length_mismatch_streams.append({"vid": rec["vid"], "lengths": lengths, "kept": rec["kept"]})
    stored = min(lengths.values())
    if rec.get("id2nframe") is not None and rec["id2nframe"] != stored:
        report.length_mismatch_id2nframe.append(
            {"vid": rec["vid"], "stored": stored, "id2nframe": rec["id2nframe"], "kept": rec["kept"]}
        )
    if rec["vid"] in durations and rec["kept"] != rec["expected_clips"]:
        report.clips_vs_duration.append({"vid": rec["vid"], "clips": rec["kept"], "expected": rec["expected_clips"]})
    report.durations_estimated += rec["vid"] not in durations
    report.videos_with_subtitles += rec["subtitles"] > 0
    report.subtitles_past_end += rec["subtitles_past_end"]


def import_tvr(
    inputs: Sequence[StreamInput],
    out_dir: str | Path,
    settings: FeatureSettings,
    annotations: Sequence[str | Path] = (),
    subtitles: str | Path | None = None,
    only_annotated: bool = False,
    progress: bool = True,
) -> ImportReport:
    """Write `<out_dir>/<vid>.safetensors` for every video present in all `inputs`; return the report
    (also written to `<out_dir>/import-tvr.report.json`)."""
    from tqdm import tqdm

    layout = tuple(s for inp in inputs for s in inp.streams)
    if [n for n, _ in layout] != [n for n, _ in VALUE_STREAMS]:
        raise C2FError(
            f"the inputs give the streams {[n for n, _ in layout]}; the value layout needs "
            f"{[n for n, _ in VALUE_STREAMS]} in that order (clip first, as VALUE concatenates)"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = ImportReport()
    durations, rows_per_video = read_durations(annotations, report)
    subs_by_vid: dict[str, list[Subtitle]] = {}
    if subtitles is not None:
        subs_by_vid, bad = read_tvr_subtitles(subtitles)
        report.annotation_bad_rows.extend(bad)
    ids_per_input = []
    for inp in inputs:
        ids = set(inp.store.ids())
        report.videos_found[f"{inp.label} ({inp.store.path})"] = len(ids)
        ids_per_input.append(ids)
    everywhere = set.intersection(*ids_per_input)
    anywhere = set.union(*ids_per_input)
    for inp, ids in zip(inputs, ids_per_input, strict=True):
        report.missing_from_stream[inp.label] = sorted(anywhere - ids)
    todo = sorted(v for v in everywhere if not only_annotated or v in rows_per_video)
    done = _read_log(out)
    cs = settings.clip_seconds
    imported: set[str] = set()
    with open(out / LOG_NAME, "a", encoding="utf-8") as log:
        for vid in tqdm(todo, desc="import-tvr", unit="video", disable=not progress):
            if not _safe_name(vid):
                report.unreadable.append({"vid": vid, "why": "not usable as a file name"})
                continue
            subs = subs_by_vid.get(vid, [])
            path = out / f"{vid}.safetensors"
            duration_known = durations.get(vid)
            rec = done.get(vid)
            # a video no annotation names was imported with duration = kept clips * cs
            resume_duration = duration_known if duration_known is not None else rec and rec.get("kept", 0) * cs
            if resume_duration and _already_imported(
                path, vid, settings, rec, _input_digest(settings, resume_duration, subs)
            ):
                report.skipped_existing += 1
                _account(report, rec, durations)
                imported.add(vid)
                continue
            try:
                mats = [inp.store.read(vid) for inp in inputs]
            except FeatureFileError as exc:
                report.unreadable.append({"vid": vid, "why": str(exc)})
                continue
            bad_dim = [
                f"{inp.label}: {m.shape[1]}-d, expected {inp.dim}"
                for inp, m in zip(inputs, mats, strict=True)
                if m.shape[1] != inp.dim
            ]
            if bad_dim:
                report.unreadable.append({"vid": vid, "why": "; ".join(bad_dim)})
                continue
            lengths = {inp.label: int(m.shape[0]) for inp, m in zip(inputs, mats, strict=True)}
            nframe = next((inp.store.id2nframe.get(vid) for inp in inputs if inp.store.id2nframe), None)
            kept = min([*lengths.values(), *([nframe] if nframe is not None else [])])
            if kept <= 0:
                report.unreadable.append({"vid": vid, "why": f"no clips (lengths {lengths}, id2nframe {nframe})"})
                continue
            feats = np.concatenate([m[:kept].astype(np.float32) for m in mats], axis=1)  # (N, 1536)
            if not np.isfinite(feats).all():
                report.unreadable.append({"vid": vid, "why": "features contain NaN or inf"})
                continue
            duration = duration_known if duration_known is not None else kept * cs
            meta = VideoMeta(
                source_name=f"{vid} (released features)",
                content_hash=hashlib.sha256(feats.tobytes()).hexdigest(),
                duration=duration,
                fps=0.0,  # unknown: only the features were released
                width=0,
                height=0,
            )
            save_features(
                ClipFeatures(vid, feats, clip_times_for(kept, duration, cs), list(VALUE_STREAMS), settings, meta, subs),
                path,
            )
            rec = {
                "vid": vid,
                "lengths": lengths,
                "id2nframe": nframe,
                "kept": kept,
                "expected_clips": math.ceil(duration / cs - 1e-9),
                "subtitles": len(subs),
                "subtitles_past_end": sum(s.start >= kept * cs for s in subs),
                "digest": _input_digest(settings, duration, subs),
            }
            log.write(json.dumps(rec) + "\n")
            log.flush()
            report.imported += 1
            _account(report, rec, durations)
            imported.add(vid)
    missing_ann = sorted(v for v in rows_per_video if v not in imported)
    report.annotated_videos_missing = missing_ann
    report.annotations_missing_video = sum(rows_per_video[v] for v in missing_ann)
    report.subtitle_videos_missing = sorted(v for v in subs_by_vid if v not in anywhere)
    (out / REPORT_NAME).write_text(json.dumps(report.to_dict(), indent=1), encoding="utf-8")
    return report

"""The C2F feature file: one `.safetensors` file per video, read by the model, the index and training.

Layout (documented in the README):
  tensors   "features"   float32 (N, D)  per-stream L2-normalised vectors, streams concatenated
            "clip_times" float64 (N, 2)  start/end seconds of each clip
  metadata  "c2f_format" "1"
            "video_id"   str
            "streams"    JSON list of [name, dim], in concatenation order, e.g. [["clip",512],["s3d",1024]]
            "settings"   JSON of FeatureSettings (every setting that produced the vectors)
            "video"      JSON of VideoMeta (source name, content hash, duration, fps, size)
            "subtitles"  JSON list of {"start", "end", "text"} (may be empty)
            "subtitle_source" (optional) JSON of how machine-made subtitles were made, e.g.
                         {"kind": "transcript", "machine_made": true, "model": "whisper-base", "language": "en"}
No pickles: safetensors holds only raw arrays and string metadata.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from c2f.errors import FeatureFileError
from c2f.features.settings import FeatureSettings
from c2f.shared_files import atomic_path

FORMAT_VERSION = "1"


@dataclass(frozen=True)
class Subtitle:
    start: float  # seconds
    end: float  # seconds
    text: str


@dataclass(frozen=True)
class VideoMeta:
    source_name: str  # original file name
    content_hash: str  # sha256 of the file bytes (dedup key)
    duration: float  # seconds
    fps: float
    width: int
    height: int


@dataclass
class ClipFeatures:
    video_id: str
    features: np.ndarray  # (N, D) float32
    clip_times: np.ndarray  # (N, 2) float64, seconds
    streams: list[tuple[str, int]]  # [(name, dim)] in concatenation order; dims sum to D
    settings: FeatureSettings
    video: VideoMeta
    subtitles: list[Subtitle] = field(default_factory=list)
    subtitle_source: dict | None = None  # None: a subtitle file (or none); else what made them (speech)

    def __post_init__(self) -> None:
        self.features = np.ascontiguousarray(self.features, dtype=np.float32)
        self.clip_times = np.ascontiguousarray(self.clip_times, dtype=np.float64)
        n, d = self.features.shape
        if self.clip_times.shape != (n, 2):
            raise FeatureFileError(f"{self.video_id}: clip_times {self.clip_times.shape} != ({n}, 2)")
        if sum(dim for _, dim in self.streams) != d:
            raise FeatureFileError(f"{self.video_id}: stream dims {self.streams} do not add up to {d}")

    @property
    def num_clips(self) -> int:
        return int(self.features.shape[0])

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    def stream(self, name: str) -> np.ndarray:
        """The columns of one stream, e.g. `stream("clip")` -> (N, 512), still L2-normalised."""
        start = 0
        for stream_name, dim in self.streams:
            if stream_name == name:
                return self.features[:, start : start + dim]
            start += dim
        raise FeatureFileError(f"{self.video_id}: no stream {name!r} (has {[s for s, _ in self.streams]})")


def save_features(feats: ClipFeatures, path: str | Path) -> Path:
    """Write atomically (temp file + rename), so a reader never sees half a file."""
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "c2f_format": FORMAT_VERSION,
        "video_id": feats.video_id,
        "streams": json.dumps([[n, d] for n, d in feats.streams]),
        "settings": json.dumps(feats.settings.to_dict(), sort_keys=True),
        "video": json.dumps(asdict(feats.video), sort_keys=True),
        "subtitles": json.dumps([asdict(s) for s in feats.subtitles]),
    }
    if feats.subtitle_source is not None:
        meta["subtitle_source"] = json.dumps(feats.subtitle_source, sort_keys=True)
    with atomic_path(path) as tmp:
        save_file({"features": feats.features, "clip_times": feats.clip_times}, str(tmp), metadata=meta)
    return path


def load_features(path: str | Path, expected: FeatureSettings | None = None) -> ClipFeatures:
    """Read a feature file; with `expected`, refuse features made with other settings."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FeatureFileError(f"feature file not found: {path}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            if meta.get("c2f_format") != FORMAT_VERSION:
                raise FeatureFileError(
                    f"{path}: not a C2F feature file (format {meta.get('c2f_format')!r}, "
                    f"expected {FORMAT_VERSION!r})"
                )
            arrays = {k: f.get_tensor(k) for k in ("features", "clip_times")}
        feats = ClipFeatures(
            video_id=meta["video_id"],
            features=arrays["features"],
            clip_times=arrays["clip_times"],
            streams=[(n, int(d)) for n, d in json.loads(meta["streams"])],
            settings=FeatureSettings.from_dict(json.loads(meta["settings"])),
            video=VideoMeta(**json.loads(meta["video"])),
            subtitles=[Subtitle(**s) for s in json.loads(meta["subtitles"])],
            subtitle_source=json.loads(meta["subtitle_source"]) if "subtitle_source" in meta else None,
        )
    except FeatureFileError:
        raise
    except Exception as exc:  # corrupt header, missing key, bad JSON
        raise FeatureFileError(f"{path}: unreadable feature file ({type(exc).__name__}: {exc})") from exc
    if expected is not None:
        expected.check_compatible(feats.settings, what=f"features in {path.name}")
    return feats

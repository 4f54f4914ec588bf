"""Queries by example ("more like this"): a moment of a library video or a picture, alone or mixed
with text at a stated weight.

- A moment (video_id, start, end) in seconds: its clips are the clips r of that video that overlap
  it (clip_times[r, 0] < end and clip_times[r, 1] > start). The query vector is the mean of their
  vectors in the backend's index space (each L2-normalised, as the index holds them), L2-normalised.
- A picture: the backend's image embedding (CLIP's image tower, the picture resized as extraction
  resizes video frames), L2-normalised.
- Mixed with text at weight w in [0, 1]: a clip scores (1 - w) * <t, clip> + w * <e, clip>, with t
  the unit text vector and e the unit example vector. That is one inner product with
  m = (1 - w) t + w e, so videos are ranked by Eq. 3 on m / |m| and every score (clip, video,
  moment) is multiplied by |m| (`QueryEncoding.scale`): scores are the weighted cosines themselves.
- The source moment is excluded: in the source video, the moment's clips take no part in Eq. 3
  (the video scores by its best other clip, and leaves the results when it has none) and the
  localizer sees them just below the video's lowest other score (`mask_clips`), so no found moment
  contains one; a moment that would still overlap them is dropped.

Only a backend whose index holds CLIP image-space vectors and whose localizer reads the similarity
curve alone (`example_queries = True`: zero-shot, tiny) takes examples. A learned C2F checkpoint's
index holds its own V_temp vectors and its localizer reads the query's words: it refuses them with
a QueryError, as does a speech-matching view (speech is scored against words).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from c2f.errors import C2FError, QueryError
from c2f.ranking import SCORE_TOLERANCE
from c2f.search.query import QueryEncoding, clean_query

if TYPE_CHECKING:
    from collections.abc import Mapping

    from c2f.index import ClipIndex, VideoHit
    from c2f.search.backends import SearchBackend
    from c2f.search.engine import SearchableLibrary, VideoEntry

DEFAULT_EXAMPLE_WEIGHT = 0.5  # w of the moment or picture when mixed with text
MAX_IMAGE_PIXELS = 100_000_000  # a picture larger than this is refused before it is decoded


class VideoSpan(Protocol):
    """A time range of one library video: a MomentRef, or a search result's Moment."""

    @property
    def video_id(self) -> str: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...


@dataclass(frozen=True)
class MomentRef:
    video_id: str
    start: float  # seconds
    end: float  # seconds


ImageSource = str | Path | np.ndarray  # a picture file, or uint8 (H, W, 3) RGB pixels


@dataclass(frozen=True, eq=False)
class Query:
    """What to search for: text, a moment (`like`), a picture (`image`), or text with one of them
    mixed at `weight` (the example's share: score = (1 - weight) * text + weight * example)."""

    text: str | None = None
    like: VideoSpan | None = None
    image: ImageSource | None = None
    weight: float = DEFAULT_EXAMPLE_WEIGHT

    def __post_init__(self) -> None:
        if self.like is not None and self.image is not None:
            raise QueryError("search by a moment or by a picture, not both at once")
        if self.text is None and self.like is None and self.image is None:
            raise QueryError("nothing to search for: give a sentence, a moment or a picture")
        if self.text is not None:
            clean_query(self.text)
        if not isinstance(self.weight, (int, float)) or not 0.0 <= self.weight <= 1.0:
            raise QueryError(f"the weight of the example must be between 0 and 1, not {self.weight!r}")

    @property
    def is_example(self) -> bool:
        return self.like is not None or self.image is not None

    def describe(self, video_name: str | None = None) -> str:
        """One line naming what was searched (SearchResult.query); `video_name`: the file name of
        the moment's video, shown with its id."""
        if self.like is not None:
            video = f"{video_name} ({self.like.video_id})" if video_name else self.like.video_id
            example = f"like {video} {self.like.start:.2f}-{self.like.end:.2f} s"
        elif self.image is not None:
            name = Path(self.image).name if isinstance(self.image, (str, Path)) else "a picture"
            example = f"picture {name}"
        else:
            return clean_query(self.text)
        if self.text is None:
            return example
        return f"{clean_query(self.text)} + {example} (weight {self.weight:g})"


_TIME = r"(?:\d+:){0,2}\d+(?:\.\d*)?"
_MOMENT = re.compile(rf"^(?P<video>[^:\s]+):(?P<start>{_TIME})-(?P<end>{_TIME})$")


def parse_seconds(text: str) -> float:
    """'75', '75.5', '1:15.5' or '0:01:15.5' -> seconds."""
    value = 0.0
    for part in text.split(":"):
        value = value * 60 + float(part)
    return value


def parse_moment_ref(text: str) -> MomentRef:
    """'VIDEO_ID:START-END' (seconds, or [h:]mm:ss[.f]) -> MomentRef; QueryError when malformed."""
    m = _MOMENT.match(text.strip())
    if m is None:
        raise QueryError(
            f"{text!r} is not a moment: write VIDEO_ID:START-END, e.g. 3f2a9c81d0e1:12.5-18 or "
            "3f2a9c81d0e1:1:05-1:20 (video ids: `c2f library list`)"
        )
    return MomentRef(m["video"], parse_seconds(m["start"]), parse_seconds(m["end"]))


def span_clips(clip_times: np.ndarray, start: float, end: float) -> tuple[int, int]:
    """(first, last) inclusive: the clips overlapping [start, end). QueryError for an empty or
    reversed range, or one outside the video."""
    duration = float(clip_times[-1, 1]) if len(clip_times) else 0.0
    if not (np.isfinite(start) and np.isfinite(end)) or start < 0 or end <= start:
        raise QueryError(f"a moment needs 0 <= start < end, not {start:g}-{end:g} s")
    if start >= duration:
        raise QueryError(f"the moment starts at {start:g} s, after the video's end ({duration:.2f} s)")
    inside = np.flatnonzero((clip_times[:, 0] < end) & (clip_times[:, 1] > start))
    return int(inside[0]), int(inside[-1])


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """(N, d) float32 rows L2-normalised exactly as ClipIndex stores them."""
    v = np.asarray(vectors, np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def unit_query(vector: np.ndarray) -> np.ndarray:
    """(d,) float32 L2-normalised exactly as ClipIndex normalises a query."""
    q = np.asarray(vector, np.float32)[None]
    return (q / np.linalg.norm(q, axis=1, keepdims=True))[0]


def moment_vector(vectors: np.ndarray, first: int, last: int) -> np.ndarray:
    """(d,) float32: the normalised mean of the clips first..last (inclusive) of (N, d) `vectors`."""
    mean = unit_rows(vectors[first : last + 1]).astype(np.float64).mean(0)
    norm = np.linalg.norm(mean)
    if not norm > 0:
        raise QueryError("the moment's clip vectors cancel out: choose a longer or another moment")
    return (mean / norm).astype(np.float32)


def load_image(source: ImageSource, short_side: int) -> np.ndarray:
    """uint8 (H, W, 3) RGB of a picture file (EXIF orientation applied) or of given pixels, resized
    so that its short side is `short_side` (as the decoder delivers video frames)."""
    from PIL import Image, ImageOps

    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim != 3 or source.shape[2] not in (3, 4):
            raise QueryError(f"a picture must be uint8 (H, W, 3) pixels, not {source.dtype} {source.shape}")
        img = Image.fromarray(source[..., :3])
    else:
        path = Path(source)
        if not path.is_file():
            raise QueryError(f"{path}: picture not found")
        try:
            img = Image.open(path)
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise QueryError(f"{path.name}: the picture is too large ({img.width}x{img.height})")
            img.draft("RGB", (short_side, short_side))  # JPEG: decode at a reduced scale when it can
            img = ImageOps.exif_transpose(img).convert("RGB")
        except QueryError:
            raise
        except Exception as exc:  # not a picture, truncated, a decompression bomb
            raise QueryError(f"{path.name}: not a picture C2F can read ({type(exc).__name__}: {exc})") from None
    w, h = img.size
    if min(w, h) < 1:
        raise QueryError("the picture is empty")
    scale = short_side / min(w, h)
    size = (max(short_side, round(w * scale)), max(short_side, round(h * scale)))
    if size != (w, h):
        img = img.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    return np.array(img, np.uint8)  # a writable copy (torch refuses read-only arrays)


def check_backend(backend: SearchBackend) -> None:
    if not getattr(backend, "example_queries", False):
        raise QueryError(
            f"{backend.name} searches by text only (its localizer reads the query's words): "
            "search by a moment or a picture with the zero-shot mode"
        )
    if getattr(backend, "speech_weight", 0.0) > 0:
        raise QueryError("a moment or a picture is matched on what is seen: use match 'visual' for it")


def encode_example_query(library: SearchableLibrary, backend: SearchBackend, query: Query) -> QueryEncoding:
    """The encoded query of a search by example (see the module docstring)."""
    check_backend(backend)
    notes: list[str] = []
    exclude: dict[str, tuple[int, int]] = {}
    described = query.describe()
    if query.like is not None:
        span = query.like
        rec = library.get(span.video_id)  # LibraryError for an unknown id
        status = getattr(rec, "status", "indexed")
        if status != "indexed":
            raise QueryError(f"video {span.video_id} ({rec.name}) is {status}, not indexed: it cannot be the query")
        described = query.describe(rec.name)
        feats = library.load_features(span.video_id)
        first, last = span_clips(feats.clip_times, float(span.start), float(span.end))
        example = moment_vector(backend.clip_vectors(feats), first, last)
        exclude[span.video_id] = (first, last)
        lo, hi = feats.clip_times[first, 0], feats.clip_times[last, 1]
        notes.append(f"the source moment is left out: video {span.video_id}, {lo:.2f}-{hi:.2f} s")
    else:
        pixels = load_image(query.image, backend.feature_settings.decode_short_side)
        example = unit_query(backend.encode_image(pixels))  # type: ignore[attr-defined]
    if query.text is None:
        return QueryEncoding(described, example, notes, by_example=True, exclude=exclude)
    text = backend.encode_query(query.text)
    w = float(query.weight)
    mixed = (1.0 - w) * unit_query(text.vector).astype(np.float64) + w * example.astype(np.float64)
    scale = float(np.linalg.norm(mixed))
    if not scale > 0:
        raise QueryError("the sentence and the example cancel out at this weight: change the weight")
    notes = [*text.notes, *notes, f"score = {1 - w:g} x text + {w:g} x example (cosines)"]
    vector = (mixed / scale).astype(np.float32)
    return QueryEncoding(described, vector, notes, by_example=True, scale=scale, exclude=exclude)


def exact_scores(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """(N,) float64 scores of one video's clips as the index computes its final ones: the float32
    unit rows and query it stores and searches with, multiplied in float64."""
    return unit_rows(vectors).astype(np.float64) @ unit_query(query).astype(np.float64)


def rank_by_example(
    library: SearchableLibrary,
    backend: SearchBackend,
    index: ClipIndex,
    records: Mapping[int, VideoEntry],
    encoded: QueryEncoding,
    top_k: int,
) -> list[VideoHit]:
    """Top-k videos by Eq. 3 with the source moment's clips left out, ties by video key (the
    index's rule); scores multiplied by `encoded.scale`. The index's top k + 1 holds the top k of
    the other videos; the source video is scored exactly on its other clips and ranked among them."""
    from c2f.index import VideoHit
    from c2f.index.ranking import first_best, order_videos_with_ties, tie_tolerance

    keys = {rec.video_id: key for key, rec in records.items()}
    left_out = {keys[v]: span for v, span in encoded.exclude.items() if v in keys and keys[v] in index}
    hits = [h for h in index.search_videos(encoded.vector, top_k + len(left_out))[0] if h.video_key not in left_out]
    tie = tie_tolerance(len(encoded.vector))
    for key, (first, last) in left_out.items():
        scores = exact_scores(backend.clip_vectors(library.load_features(records[key].video_id)), encoded.vector)
        scores[first : last + 1] = -np.inf
        if np.isfinite(scores).any():
            hits.append(VideoHit(key, float(scores.max()), first_best(scores, tie)))
    order = order_videos_with_ties(
        np.array([h.score for h in hits], np.float64), np.array([h.video_key for h in hits], np.int64), tie
    )
    return [VideoHit(hits[i].video_key, hits[i].score * encoded.scale, hits[i].best_clip) for i in order[:top_k]]


def mask_clips(similarity: np.ndarray, first: int, last: int) -> np.ndarray:
    """(N,) a copy with clips first..last just below the lowest other score (2 x SCORE_TOLERANCE),
    so the localizer never puts them in a moment; raises C2FError when no other clip is left."""
    curve = np.array(similarity, np.float64)
    others = np.delete(curve, np.arange(first, last + 1))
    if len(others) == 0:
        raise C2FError("the source moment covers the whole video")
    curve[first : last + 1] = others.min() - 2 * SCORE_TOLERANCE
    return curve


def overlaps(span: tuple[int, int], first: int, last: int) -> bool:
    return span[0] <= last and span[1] >= first

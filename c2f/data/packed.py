"""A folder of feature files packed once into memory-mapped arrays for training at TVR scale: no
file is opened per step, and subtitle / query token embeddings are computed once.

The pack lives beside the features, in `<features>/.c2f-pack/<fingerprint>/`; the fingerprint
covers every file's name, size and modification time, the feature settings and the text encoder,
so a changed folder or another text encoder gives a new pack (older ones are removed).

  clips.npy     (total_clips, D)   float16 when every vector is exactly a float16 (VALUE's release
                                   is float16), else float32
  segments.npy  (S, 4) int64       first, end (exclusive) row of seg_clips.npy, token_start, token_end
  seg_clips.npy (C,) int64         each segment's clips in the video (a subtitle's are not always
                                   consecutive)
                                   (-1, -1: no subtitle text): HERO alignment, `align_subtitles`
  offsets.npy   (2, V + 1) int64   per video: first clip row, first segment row
  tokens.bin    (total_tokens, Dt) float16 subtitle token embeddings (raw, shape in index.json)
  index.json    names, durations, clip_seconds, settings, text encoder, shapes
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from c2f.errors import C2FError
from c2f.features.settings import FeatureSettings
from c2f.features.store import Subtitle
from c2f.features.subtitles import align_subtitles
from c2f.model.c2f import VideoInput
from c2f.shared_files import TEMP_PREFIX, atomic_folder, atomic_path

PACK_VERSION = "2"
PACK_DIR = ".c2f-pack"
TokenEncoder = Callable[[list[str]], list[np.ndarray]]


class PackedVideos(Sequence[VideoInput]):
    """The videos of a pack as a read-only sequence of VideoInput (features copied to float32 on
    access: one video, a few hundred KB)."""

    def __init__(self, pack: PackedCorpus) -> None:
        self.pack = pack

    def __len__(self) -> int:
        return len(self.pack.names)

    @overload
    def __getitem__(self, i: int) -> VideoInput: ...
    @overload
    def __getitem__(self, i: slice) -> list[VideoInput]: ...
    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.pack.video(k) for k in range(*i.indices(len(self)))]
        return self.pack.video(i)


class PackedCorpus:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        index = json.loads((directory / "index.json").read_text())
        self.names: list[str] = index["names"]
        self.durations: list[float] = index["durations"]
        self.clip_seconds: float = index["clip_seconds"]
        self.settings = FeatureSettings.from_dict(index["settings"])
        self.text_encoder: dict | None = index["text_encoder"]
        self.clips = np.load(directory / "clips.npy", mmap_mode="r", allow_pickle=False)  # (total_clips, D)
        self.segments = np.load(directory / "segments.npy", allow_pickle=False)  # (S, 4)
        self.seg_clips = np.load(directory / "seg_clips.npy", allow_pickle=False)  # (C,)
        self.clip_offsets, self.seg_offsets = np.load(directory / "offsets.npy", allow_pickle=False)
        t_rows, t_dim = index["token_shape"]
        self.tokens = (
            np.memmap(directory / "tokens.bin", np.float16, "r", shape=(t_rows, t_dim)) if t_rows else None
        )

    def __len__(self) -> int:
        return len(self.names)

    def num_clips(self, i: int) -> int:
        return int(self.clip_offsets[i + 1] - self.clip_offsets[i])

    def video(self, i: int) -> VideoInput:
        feats = np.asarray(self.clips[self.clip_offsets[i] : self.clip_offsets[i + 1]], dtype=np.float32)
        segs = []
        for c0, c1, t0, t1 in self.segments[self.seg_offsets[i] : self.seg_offsets[i + 1]]:
            toks = None if t0 < 0 or self.tokens is None else np.asarray(self.tokens[t0:t1], dtype=np.float32)
            segs.append((self.seg_clips[c0:c1], toks))
        return VideoInput(feats, segs)

    def corpus(self):
        from c2f.model.inference import Corpus

        return Corpus(self.names, PackedVideos(self), self.durations, self.clip_seconds)


def _fingerprint(files: list[Path], expected: FeatureSettings | None, text_spec: dict | None) -> str:
    h = hashlib.sha256(PACK_VERSION.encode())
    h.update(json.dumps([expected.fingerprint() if expected else None, text_spec], sort_keys=True).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _headers(files: list[Path]) -> list[dict[str, Any]]:
    """Shape and metadata of every file, without reading the vectors."""
    from safetensors import safe_open

    out = []
    for f in files:
        try:
            with safe_open(str(f), framework="numpy") as fh:
                meta = fh.metadata() or {}
                shape = fh.get_slice("features").get_shape()
        except Exception as exc:
            raise C2FError(f"{f}: unreadable feature file ({type(exc).__name__}: {exc})") from exc
        out.append({"file": f, "shape": shape, "meta": meta})
    return out


def _write_clips(path: Path, files: list[Path], total: int, dim: int, progress: bool) -> str:
    """Copy every file's vectors into one .npy; float16 when that is exact for all, else float32."""
    from safetensors import safe_open
    from tqdm import tqdm

    for dtype in (np.float16, np.float32):
        out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(total, dim))
        row, exact = 0, True
        for f in tqdm(files, desc=f"pack features ({np.dtype(dtype).name})", disable=not progress):
            with safe_open(str(f), framework="numpy") as fh:
                x = fh.get_tensor("features")  # (N, D) float32
            if dtype == np.float16 and not np.array_equal(x.astype(np.float16).astype(np.float32), x):
                exact = False
                break
            out[row : row + len(x)] = x
            row += len(x)
        out.flush()
        del out
        if exact:
            return np.dtype(dtype).name
    raise AssertionError("unreachable: float32 is always exact")


def pack_features(
    directory: str | Path,
    expected: FeatureSettings | None = None,
    encode_tokens: TokenEncoder | None = None,
    text_spec: dict | None = None,
    progress: bool = True,
    batch_texts: int = 512,
) -> PackedCorpus:
    """Pack `<directory>/*.safetensors` (or reuse the pack of the same fingerprint)."""
    d = Path(directory)
    files = sorted(d.glob("*.safetensors"))
    if not files:
        raise C2FError(f"no feature files (*.safetensors) in {d}")
    fp = _fingerprint(files, expected, text_spec if encode_tokens else None)
    root = d / PACK_DIR
    target = root / fp
    if (target / "index.json").is_file():
        return PackedCorpus(target)
    headers = _headers(files)
    settings = [FeatureSettings.from_dict(json.loads(h["meta"]["settings"])) for h in headers]
    ref = expected or settings[0]
    for h, s in zip(headers, settings, strict=True):
        ref.check_compatible(s, what=f"features in {h['file'].name}")
    dims = {h["shape"][1] for h in headers}
    if len(dims) != 1:
        raise C2FError(f"{d}: feature files of different widths {sorted(dims)}")
    with atomic_folder(target) as tmp:
        counts = [h["shape"][0] for h in headers]
        dtype = _write_clips(tmp / "clips.npy", files, sum(counts), dims.pop(), progress)
        segments, seg_offsets, texts, text_rows = [], [0], [], []
        seg_clips: list[np.ndarray] = []
        n_seg_clips = 0
        for h, n in zip(headers, counts, strict=True):
            subs = [Subtitle(**s) for s in json.loads(h["meta"].get("subtitles", "[]"))]
            al = align_subtitles(subs, n, ref.clip_seconds)
            text_of: dict[int, int] = {}  # subtitle index -> its text number (split segments share it)
            for k, clips in al.segments:
                if k >= 0 and encode_tokens is not None:
                    if k not in text_of:
                        text_of[k] = len(texts)
                        texts.append(subs[k].text)
                    text_rows.append((len(segments), text_of[k]))
                segments.append([n_seg_clips, n_seg_clips + len(clips), -1, -1])
                seg_clips.append(clips)
                n_seg_clips += len(clips)
            seg_offsets.append(len(segments))
        seg = np.asarray(segments, dtype=np.int64).reshape(-1, 4)
        token_rows, token_dim = _write_tokens(tmp / "tokens.bin", texts, encode_tokens, batch_texts, progress)
        for row, t in text_rows:
            seg[row, 2:] = token_rows[t], token_rows[t + 1]
        np.save(tmp / "segments.npy", seg)
        np.save(tmp / "seg_clips.npy", np.concatenate([np.zeros(0, np.int64), *seg_clips]).astype(np.int64))
        np.save(tmp / "offsets.npy", np.stack([np.cumsum([0, *counts]), np.asarray(seg_offsets)]))
        index = {
            "version": PACK_VERSION,
            "names": [f.stem for f in files],
            "durations": [float(json.loads(h["meta"]["video"])["duration"]) for h in headers],
            "clip_seconds": ref.clip_seconds,
            "settings": ref.to_dict(),
            "text_encoder": text_spec if encode_tokens else None,
            "clip_dtype": dtype,
            "token_shape": [int(token_rows[-1]), token_dim],
        }
        (tmp / "index.json").write_text(json.dumps(index))
        for old in root.iterdir():  # one pack per folder: older fingerprints are stale
            if old.is_dir() and not old.name.startswith(TEMP_PREFIX):
                shutil.rmtree(old, ignore_errors=True)
    return PackedCorpus(target)


def _write_tokens(
    path: Path, texts: list[str], encode: TokenEncoder | None, batch: int, progress: bool
) -> tuple[np.ndarray, int]:
    """Token embeddings of `texts` one after another in a raw float16 file; returns the row
    offsets (len(texts) + 1,) and the width."""
    from tqdm import tqdm

    offsets, dim = [0], 0
    with open(path, "wb") as fh:
        for s in tqdm(range(0, len(texts), batch), desc="encode subtitles", disable=not progress or not texts):
            for t in encode(texts[s : s + batch]) if encode else []:
                fh.write(np.ascontiguousarray(t, dtype=np.float16).tobytes())
                offsets.append(offsets[-1] + len(t))
                dim = t.shape[1]
    return np.asarray(offsets, dtype=np.int64), dim


class PackedTokens(Sequence[np.ndarray]):
    """Query token embeddings computed once and kept in a float16 file (float32 on access)."""

    def __init__(self, data: np.ndarray, offsets: np.ndarray) -> None:
        self.data, self.offsets = data, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        return np.asarray(self.data[self.offsets[i] : self.offsets[i + 1]], dtype=np.float32)


def packed_query_tokens(
    texts: list[str], encode: TokenEncoder, text_spec: dict, cache_dir: str | Path, progress: bool = True
) -> PackedTokens:
    """Token embeddings of query texts, cached in `cache_dir` under a fingerprint of the texts and
    the text encoder."""
    if not texts:
        return PackedTokens(np.zeros((0, 1), np.float16), np.zeros(1, np.int64))
    blob = json.dumps([PACK_VERSION, text_spec, texts], sort_keys=True).encode()
    fp = hashlib.sha256(blob).hexdigest()[:16]
    root = Path(cache_dir) / PACK_DIR
    root.mkdir(parents=True, exist_ok=True)
    data, offs = root / f"queries-{fp}.bin", root / f"queries-{fp}.offsets.npy"
    if not offs.is_file():  # the offsets file is written last: once it exists, both are whole
        with atomic_path(data) as tmp:
            offsets, dim = _write_tokens(tmp, texts, encode, 512, progress)
        with atomic_path(offs) as tmp:
            np.save(tmp, np.concatenate([offsets, [dim]]))  # the width rides last
    stored = np.load(offs, allow_pickle=False)
    offsets, dim = stored[:-1], int(stored[-1])
    return PackedTokens(np.memmap(data, np.float16, "r", shape=(int(offsets[-1]), dim)), offsets)

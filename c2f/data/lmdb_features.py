"""Readers of released clip-feature stores: VALUE's per-video `.npz` folders and HERO/VALUE LMDB
video databases. Both give `(N, d)` arrays keyed by video id; nothing here writes.

Formats (HERO `data/data.py` VideoFeatLmdb, VALUE StarterCode `scripts/convert_videodb.py`):
- npz folder: `<vid>.npz` (any depth below the folder) holding `features` (N, d), float16 or float32.
- LMDB: the folder holds `data.mdb`; each key is a video id (utf-8), each value either
  msgpack `{'features': array}` with msgpack-numpy's array encoding (decoded by `decode_numeric`,
  never by msgpack_numpy.decode, which unpickles object arrays), or, in `*_compressed` databases,
  the bytes of an `.npz` file with `features`. Keys starting with `__` (e.g. `__keys__`) are not
  videos. `id2nframe.json` (HERO) or `id2nframe_<interval>.json` (VALUE) lies in the folder or
  beside it: the number of clips each video is read with (VALUE keeps the smaller of it and the
  stored length).

`lmdb` and `msgpack` are imported only when an LMDB store is opened.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Protocol

import numpy as np

from c2f.errors import FeatureFileError

_ZIP_MAGIC = b"PK\x03\x04"  # an .npz file is a zip archive
_NUMERIC_KINDS = "biufc"  # bool, signed, unsigned, float, complex


class RefusedValueError(ValueError):
    """A stored value that is not plain numbers (decoding it could run code)."""


def decode_numeric(obj: dict) -> object:
    """msgpack `object_hook` for msgpack-numpy's encoding that builds numeric arrays and scalars only.

    msgpack_numpy.decode unpickles object arrays (kind b'O'), so a tampered database runs its
    author's code; here object, structured (void) and any other non-numeric dtype is refused.
    """
    if b"nd" not in obj:
        return obj
    kind = obj.get(b"kind", b"")
    if kind == b"O":
        raise RefusedValueError("an object array (decoding it would unpickle); only numeric arrays are read")
    if kind == b"V":
        raise RefusedValueError("a structured (void) array; only numeric arrays are read")
    descr, data = obj.get(b"type"), obj.get(b"data")
    if kind or not isinstance(descr, str) or not isinstance(data, bytes):
        raise RefusedValueError(f"not a numeric msgpack-numpy array (kind {kind!r}, type {descr!r})")
    dtype = np.dtype(descr)  # a plain dtype string: parsing it runs nothing
    if dtype.kind not in _NUMERIC_KINDS:
        raise RefusedValueError(f"non-numeric dtype {descr}; only numeric arrays are read")
    if obj[b"nd"] is not True:  # a numpy scalar
        return np.frombuffer(data, dtype=dtype, count=1)[0]
    shape = obj.get(b"shape")
    if not isinstance(shape, (list, tuple)) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise RefusedValueError(f"bad array shape {shape!r}")
    return np.frombuffer(data, dtype=dtype, count=math.prod(shape)).reshape(shape)


class FeatureStore(Protocol):
    path: Path
    id2nframe: dict[str, int] | None

    def ids(self) -> list[str]: ...

    def read(self, vid: str) -> np.ndarray: ...


def _features_from_npz_bytes(data: bytes | io.BufferedIOBase, where: str) -> np.ndarray:
    # allow_pickle stays False: the feature array is plain floats, a pickle would be refused
    with np.load(io.BytesIO(data) if isinstance(data, bytes) else data, allow_pickle=False) as npz:
        if "features" not in npz.files:
            raise FeatureFileError(f"{where}: no 'features' array (has {npz.files})")
        return np.asarray(npz["features"])


def _check_matrix(arr: np.ndarray, where: str) -> np.ndarray:
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
        raise FeatureFileError(f"{where}: features must be a float (N, d) matrix, got {arr.dtype} {arr.shape}")
    return arr


class NpzFolder:
    """VALUE's per-video `.npz` files of one stream (e.g. `clip-vit/` or `mil-nce-s3d/`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.id2nframe: dict[str, int] | None = None
        self._files: dict[str, Path] = {}
        for f in sorted(self.path.rglob("*.npz")):
            self._files.setdefault(f.stem, f)  # the same id twice: the first path in sorted order

    def ids(self) -> list[str]:
        return sorted(self._files)

    def read(self, vid: str) -> np.ndarray:
        f = self._files[vid]
        try:
            with open(f, "rb") as fh:
                return _check_matrix(_features_from_npz_bytes(fh.read(), str(f)), str(f))
        except FeatureFileError:
            raise
        except Exception as exc:  # truncated zip, bad header
            raise FeatureFileError(f"{f}: unreadable npz ({type(exc).__name__}: {exc})") from exc


def _read_id2nframe(db_dir: Path) -> dict[str, int] | None:
    for folder in (db_dir, db_dir.parent):
        names = ["id2nframe.json", *sorted(p.name for p in folder.glob("id2nframe_*.json"))]
        for name in names:
            f = folder / name
            if f.is_file():
                try:
                    return {str(k): int(v) for k, v in json.loads(f.read_text()).items()}
                except (ValueError, AttributeError) as exc:
                    raise FeatureFileError(f"{f}: not a JSON object of video id -> frame count ({exc})") from None
    return None


class LmdbVideoDB:
    """A HERO/VALUE LMDB video database, read-only."""

    def __init__(self, path: str | Path) -> None:
        try:
            import lmdb
        except ImportError:
            raise FeatureFileError(
                "reading LMDB feature databases needs the packages lmdb and msgpack (pip install lmdb msgpack)"
            ) from None
        self.path = Path(path)
        if not (self.path / "data.mdb").is_file():
            raise FeatureFileError(f"{self.path}: not an LMDB database (no data.mdb in it)")
        self._env = lmdb.open(str(self.path), readonly=True, lock=False, readahead=False, max_readers=64)
        self.id2nframe = _read_id2nframe(self.path)

    def ids(self) -> list[str]:
        with self._env.begin() as txn:
            keys = [k.decode("utf-8") for k in txn.cursor().iternext(keys=True, values=False)]
        return sorted(k for k in keys if not k.startswith("__"))

    def read(self, vid: str) -> np.ndarray:
        with self._env.begin() as txn:
            raw = txn.get(vid.encode("utf-8"))
        where = f"{self.path}[{vid}]"
        if raw is None:
            raise FeatureFileError(f"{where}: no such key")
        try:
            if raw[:4] == _ZIP_MAGIC:  # compressed database: npz bytes
                return _check_matrix(_features_from_npz_bytes(bytes(raw), where), where)
            import msgpack

            value = msgpack.unpackb(raw, object_hook=decode_numeric, raw=False)
        except FeatureFileError:
            raise
        except RefusedValueError as exc:
            raise FeatureFileError(f"{where}: refused: {exc}") from None
        except Exception as exc:
            raise FeatureFileError(f"{where}: unreadable value ({type(exc).__name__}: {exc})") from exc
        if not isinstance(value, dict) or "features" not in value:
            raise FeatureFileError(f"{where}: value is not {{'features': array}}")
        return _check_matrix(np.asarray(value["features"]), where)

    def close(self) -> None:
        self._env.close()


def open_feature_store(path: str | Path) -> FeatureStore:
    """An LMDB database (a folder with data.mdb) or a folder of per-video .npz files."""
    p = Path(path)
    if not p.is_dir():
        raise FeatureFileError(f"{p}: feature store not found (expected a folder of .npz files or an LMDB folder)")
    if (p / "data.mdb").is_file():
        return LmdbVideoDB(p)
    store = NpzFolder(p)
    if not store.ids():
        raise FeatureFileError(f"{p}: neither an LMDB database (data.mdb) nor a folder with .npz files")
    return store

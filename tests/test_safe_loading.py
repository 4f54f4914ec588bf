"""Files C2F did not write never run code: LMDB values decode only numeric arrays (an object array,
which msgpack-numpy would unpickle, is refused naming the key), .npz files are read without pickles,
and no loader in the source can unpickle (an AST walk fails naming file:line)."""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
from pathlib import Path

import lmdb
import msgpack
import msgpack_numpy
import numpy as np
import pytest

from c2f.cli import main
from c2f.data.lmdb_features import LmdbVideoDB, NpzFolder
from c2f.errors import FeatureFileError

ROOT = Path(__file__).resolve().parents[1]
GOOD, EVIL = "show_s01_clip_00", "show_s01_clip_01"
GOOD_FEATURES = np.arange(3 * 1536, dtype=np.float16).reshape(3, 1536) / 4096


class WritesFile:
    """Unpickling this object creates the file `path` (what a tampered database could do)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def hostile_array(marker: Path) -> np.ndarray:
    return np.array([WritesFile(marker)], dtype=object)


def write_lmdb(db: Path, values: dict[str, bytes]) -> None:
    db.mkdir(parents=True)
    env = lmdb.open(str(db), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for key, value in values.items():
            txn.put(key.encode(), value)
    env.close()


def packed(features: np.ndarray) -> bytes:
    """A value as HERO/VALUE write it: msgpack {'features': array} with msgpack-numpy's encoding."""
    return msgpack.packb({"features": features}, default=msgpack_numpy.encode, use_bin_type=True)


def test_hostile_lmdb_is_refused_through_the_cli_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    db = tmp_path / "clip-vit_mil-nce_1.5"
    write_lmdb(db, {GOOD: packed(GOOD_FEATURES), EVIL: packed(hostile_array(marker))})
    assert not marker.exists()
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "c2f", "import-tvr", "--concat", str(db), "--out", str(out), "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert not marker.exists(), "the pickle inside the database ran"
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    # the good video is imported; the hostile one is refused with its key named, and not written
    assert report["imported"] == 1 and [u["vid"] for u in report["unreadable"]] == [EVIL]
    why = report["unreadable"][0]["why"]
    assert f"[{EVIL}]" in why and "object array" in why, why
    assert sorted(p.name for p in out.glob("*.safetensors")) == [f"{GOOD}.safetensors"]


def test_hostile_npz_object_array_is_refused(tmp_path, capsys):
    marker = tmp_path / "pwned"
    folder = tmp_path / "clip-vit"
    folder.mkdir()
    np.savez(folder / f"{EVIL}.npz", features=hostile_array(marker))
    with pytest.raises(FeatureFileError, match=rf"{EVIL}\.npz: .*pickle"):
        NpzFolder(folder).read(EVIL)
    # the compressed LMDB layout holds npz bytes: refused the same way
    buf = io.BytesIO()
    np.savez_compressed(buf, features=hostile_array(marker))
    write_lmdb(tmp_path / "z", {EVIL: buf.getvalue()})
    with pytest.raises(FeatureFileError, match=rf"\[{EVIL}\]: .*pickle"):
        LmdbVideoDB(tmp_path / "z").read(EVIL)
    # and through the command: reported, not imported, nothing run
    args = ["import-tvr", "--clip", str(folder), "--s3d", str(folder), "--out", str(tmp_path / "o"), "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["imported"] == 0 and [u["vid"] for u in report["unreadable"]] == [EVIL]
    assert not marker.exists()


def test_numeric_values_decode_exactly_and_everything_else_is_refused(tmp_path):
    from c2f.data.lmdb_features import decode_numeric

    # every numeric dtype and shape round-trips bit for bit through msgpack-numpy's own encoding
    for arr in (GOOD_FEATURES, np.ones((2, 3), np.float32), np.arange(5, dtype=np.int64), np.array([True, False])):
        got = msgpack.unpackb(packed(arr), object_hook=decode_numeric, raw=False)["features"]
        assert got.dtype == arr.dtype and got.shape == arr.shape
        np.testing.assert_array_equal(got, arr)
    scalar = msgpack.unpackb(packed(np.float32(2.5)), object_hook=decode_numeric, raw=False)["features"]
    assert scalar == np.float32(2.5) and scalar.dtype == np.float32
    def raw(dtype: str, shape: list[int], data: bytes) -> bytes:  # a hand-made msgpack-numpy array
        nd = {b"nd": True, b"type": dtype, b"kind": b"", b"shape": shape, b"data": data}
        return msgpack.packb({"features": nd}, use_bin_type=True)

    refused = {  # the message each value is refused with -> the value
        "object array": packed(hostile_array(tmp_path / "x")),
        "structured (void) array": packed(np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")])),
        "non-numeric dtype <U3": packed(np.array(["abc"])),
        "non-numeric dtype |O": raw("|O", [1], b"\0" * 8),  # object dtype under the numeric marker
        "buffer is smaller": raw("<f4", [4], b"\0" * 8),
    }
    write_lmdb(tmp_path / "db", {f"v{i}": v for i, v in enumerate(refused.values())})
    store = LmdbVideoDB(tmp_path / "db")
    for i, why in enumerate(refused):
        with pytest.raises(FeatureFileError) as err:
            store.read(f"v{i}")
        assert f"db[v{i}]: " in str(err.value) and why in str(err.value), str(err.value)
    assert not (tmp_path / "x").exists()


# --- the source audit: no loader can unpickle ------------------------------------------------------
AUDITED = [ROOT / "c2f", ROOT / "benchmarks", ROOT / "app.py"]
UNPICKLING_MODULES = {"pickle", "_pickle", "cPickle", "dill", "joblib", "cloudpickle", "shelve", "marshal", "msgpack_numpy"}
ALWAYS_UNSAFE_CALLS = {"read_pickle", "unsafe_load", "full_load"}  # pandas / yaml
# call name -> (keyword, the only value allowed); the keyword must be written out
REQUIRED_KEYWORD = {
    "torch.load": ("weights_only", True),
    "load_state_dict_from_url": ("weights_only", True),
    "load_url": ("weights_only", True),
    "np.load": ("allow_pickle", False),
    "numpy.load": ("allow_pickle", False),
}


def call_name(func: ast.expr) -> str:
    """torch.load -> "torch.load"; torch.hub.load_state_dict_from_url -> "load_state_dict_from_url"."""
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        name = f"{func.value.id}.{func.attr}"
        return name if name in REQUIRED_KEYWORD or name == "yaml.load" else func.attr
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def unsafe_loads(source: str, where: str) -> list[str]:
    """'where:line what' for every way `source` could unpickle a file it reads."""
    found = []
    for node in ast.walk(ast.parse(source, where)):
        if isinstance(node, ast.Import):
            found += [f"{where}:{node.lineno} imports {a.name}" for a in node.names if a.name.split(".")[0] in UNPICKLING_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in UNPICKLING_MODULES:
                found.append(f"{where}:{node.lineno} imports from {node.module}")
            elif node.module in ("torch", "numpy", "yaml") and any(a.name in ("load", "unsafe_load", "full_load") for a in node.names):
                found.append(f"{where}:{node.lineno} imports load from {node.module} (call it as {node.module}.load)")
        elif isinstance(node, ast.Call):
            name = call_name(node.func)
            if name in ALWAYS_UNSAFE_CALLS or name == "yaml.load":
                found.append(f"{where}:{node.lineno} calls {name}")
            elif name in REQUIRED_KEYWORD:
                keyword, allowed = REQUIRED_KEYWORD[name]
                given = [k.value for k in node.keywords if k.arg == keyword]
                if not (given and isinstance(given[0], ast.Constant) and given[0].value is allowed):
                    found.append(f"{where}:{node.lineno} calls {name} without {keyword}={allowed}")
        elif isinstance(node, ast.keyword) and node.arg in ("allow_pickle", "weights_only"):
            safe = {"allow_pickle": False, "weights_only": True}[node.arg]
            if not (isinstance(node.value, ast.Constant) and node.value.value is safe):
                found.append(f"{where}:{node.value.lineno} passes {node.arg}={ast.unparse(node.value)}")
    return sorted(set(found), key=lambda s: (s.split(":")[0], int(s.split(":")[1].split(" ")[0]), s))


def test_the_audit_finds_each_unsafe_loader():
    hostile = """import pickle
from joblib import load
import msgpack_numpy as m
from torch import load
x = torch.load(f)
x = torch.load(f, weights_only=False)
y = np.load(f)
y = numpy.load(f, allow_pickle=True)
z = pd.read_pickle(f)
torch.hub.load_state_dict_from_url(url)
w = yaml.load(f)
np.savez(f, allow_pickle=flag)
ok = torch.load(f, weights_only=True) + np.load(f, allow_pickle=False)
"""
    lines = sorted({int(f.split(" ")[0].split(":")[1]) for f in unsafe_loads(hostile, "x.py")})
    assert lines == list(range(1, 13))  # each line but the last, the safe one


def test_no_loader_in_the_source_can_unpickle():
    files = [f for p in AUDITED for f in ([p] if p.is_file() else sorted(p.rglob("*.py")))]
    assert len(files) > 50
    found = [hit for f in files for hit in unsafe_loads(f.read_text(), str(f.relative_to(ROOT)))]
    assert not found, "a read path that can unpickle:\n" + "\n".join(found)

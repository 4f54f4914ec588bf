"""Where a benchmark result comes from: the commit it was measured on and a hash of the source it
measured, so that `benchmarks/stale_results.py` can tell which results the working tree has outrun.

A benchmark puts `provenance(paths)` under the key "provenance" of its results JSON, `paths` being
the source folders or files its numbers depend on (the model benchmarks: c2f/model and c2f/train).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from c2f.shared_files import atomic_write_bytes, exclusive_lock  # noqa: E402

MODEL_SOURCE = ("c2f/model", "c2f/train")  # what training and the ablation numbers depend on


def source_files(paths: tuple[str, ...] | list[str], root: Path = ROOT) -> list[Path]:
    """The Python files under `paths` (folders or files, relative to `root`), sorted."""
    files: set[Path] = set()
    for p in paths:
        full = root / p
        if full.is_file():
            files.add(full)
        elif full.is_dir():
            files.update(f for f in full.rglob("*.py") if "__pycache__" not in f.parts)
        else:
            raise FileNotFoundError(f"{p} is not in {root}")
    return sorted(files)


def source_hash(paths: tuple[str, ...] | list[str], root: Path = ROOT) -> str:
    """SHA-256 over the relative path and bytes of every file of `source_files`: any edit, added
    or removed file changes it; comments count (a hash cannot tell them from code)."""
    h = hashlib.sha256()
    for f in source_files(paths, root):
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()


def _git(*args: str, root: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()


def provenance(paths: tuple[str, ...] | list[str] = MODEL_SOURCE, root: Path = ROOT) -> dict[str, Any]:
    """{"commit", "uncommitted" (the hashed files differ from the commit), "source": {"paths",
    "sha256"}}: what a results JSON records about the code it measured. In a copy without git (the
    GPU machine) the commit is $C2F_COMMIT and "uncommitted" None."""
    try:
        commit = _git("rev-parse", "--short=12", "HEAD", root=root)
        uncommitted: bool | None = bool(_git("status", "--porcelain", "--", *paths, root=root))
    except (OSError, subprocess.CalledProcessError):
        commit, uncommitted = os.environ.get("C2F_COMMIT", "unknown"), None
    return {
        "commit": commit,
        "uncommitted": uncommitted,
        "source": {"paths": list(paths), "sha256": source_hash(paths, root)},
    }


def write_results(path: str | Path, result: dict[str, Any]) -> Path:
    """Write a results JSON in one piece (an interrupted run leaves the previous file whole)."""
    return atomic_write_bytes(Path(path), (json.dumps(result, indent=1) + "\n").encode())


def add_run(path: str | Path, run: dict[str, Any] | None, header: dict[str, Any] | None = None) -> dict[str, Any]:
    """Append `run` (if any) to the "runs" of the results JSON at `path` and set its top-level
    `header` keys, re-reading the file under a lock: processes measuring into one file keep each
    other's runs. Returns the file's content."""
    path = Path(path).resolve()
    lock = Path(tempfile.gettempdir()) / f"c2f-results-{hashlib.sha1(str(path).encode()).hexdigest()[:16]}.lock"
    with exclusive_lock(lock):
        result = json.loads(path.read_text()) if path.is_file() else {}
        result.update(header or {})
        result["runs"] = [*result.get("runs", []), *([run] if run is not None else [])]
        write_results(path, result)
    return result

"""Where Gradio keeps the example queries' results (cached on first use over the showcase, on a
public deployment): a folder of the app's own temporary folder named by everything those results
depend on (the mode and its backend, the showcase's videos and features, the example queries, the
code that searches and draws them, Gradio's version), so that a restart with another model, mode,
showcase or version never serves the results of the old one.

Gradio 6 reads the folder from GRADIO_EXAMPLES_CACHE when an Examples block is made and when it
serves a file, default `.gradio/cached_examples` in the working folder (on a Space, the app's folder:
maybe read-only), and finds a result there by the component's id and the example's row alone.
Gradio also serves files from that folder, so it is never under the library root.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from c2f.errors import C2FError
from c2f.library import VideoRecord
from c2f.ui.examples import example_queries
from c2f.ui.sweep import remove_folder

if TYPE_CHECKING:
    from c2f.ui.service import AppService

PACKAGE = Path(__file__).resolve().parents[1]  # c2f/
FOLDER_PREFIX = "c2f-"
STORAGE_FIELDS = ("added_at", "stored_path", "is_copy")  # where and when a video was stored, not what it is


def source_fingerprint(package: Path = PACKAGE, extra: Sequence[Path] = ()) -> str:
    """sha256 of every file of `package` (its compiled caches aside: names and contents, not
    times) and of the `extra` files (the page's layout, app.py): ~10 ms for C2F's ~135 files, under 1 MB."""
    files = sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for name, path in [
        *((p.relative_to(package).as_posix(), p) for p in files),
        *((p.name, p) for p in extra),
    ]:
        digest.update(f"{name}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def examples_cache_key(
    mode: str, backend: str | None, showcase: Sequence[VideoRecord], queries: Sequence[str], source: str
) -> str:
    """What the example results of `mode` depend on, hashed: the mode, its backend's fingerprint
    (a checkpoint's content for a learned mode; None when it cannot run), the showcase's videos
    (every field of their records but where and when they were stored), the example queries,
    `source` (source_fingerprint) and Gradio's version (its cache's format)."""
    videos = [
        {k: v for k, v in dataclasses.asdict(r).items() if k not in STORAGE_FIELDS}
        for r in sorted(showcase, key=lambda r: r.key)
    ]
    state = {
        "mode": mode,
        "backend": backend,
        "showcase": videos,
        "queries": list(queries),
        "source": source,
        "gradio": importlib.metadata.version("gradio"),
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:20]


def service_examples_key(service: AppService, mode: str, page: Path | None = None) -> str:
    """examples_cache_key of the service's `mode` as it is now (after its start-up: the showcase
    indexed), `page` the file that lays the page out."""
    try:
        backend: str | None = service.backend(mode).fingerprint
        showcase = service.showcase(mode).library.list()
    except C2FError:  # the mode cannot run: its examples fail, and nothing is kept
        backend, showcase = None, []
    source = source_fingerprint(extra=[page] if page else [])
    return examples_cache_key(mode, backend, showcase, example_queries(), source)


def keyed_folder(root: Path, key: str, own_root: bool) -> Path:
    """`root`/c2f-`key`, made. `own_root` (the app's temporary folder, read by nothing else): every
    other folder there, results of another mode, showcase or version, is removed."""
    folder = root / f"{FOLDER_PREFIX}{key}"
    if own_root and root.is_dir():
        stale = [old for old in root.iterdir() if old.is_dir() and old != folder]
        for old in stale:
            remove_folder(old)
        if stale:
            print(f"c2f: removed {len(stale)} stale cache(s) of example results from {root}", flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def examples_cache_folder(service: AppService, mode: str, page: Path | None = None) -> Path:
    """The folder for `mode`'s example results, to be GRADIO_EXAMPLES_CACHE: keyed, under the one
    the environment names when set (its other folders are left alone), else under the app's
    temporary folder."""
    given = os.environ.get("GRADIO_EXAMPLES_CACHE")
    root = Path(given) if given else service.config.examples_cache_root
    return keyed_folder(root, service_examples_key(service, mode, page), own_root=not given)


__all__ = [
    "examples_cache_folder",
    "examples_cache_key",
    "keyed_folder",
    "service_examples_key",
    "source_fingerprint",
]

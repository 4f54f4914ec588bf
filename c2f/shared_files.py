"""Files that other processes may read or write at the same time: whole-file (or whole-folder)
replacement by a rename, and an exclusive lock across processes.

A reader of a file written through `atomic_path` sees the old content or the new one, never half of
one; a write that fails (an exception, a full disk) leaves the old file, or none, and no temporary
file. A read-modify-write of a file shared between processes holds `exclusive_lock` on a lock file
beside it for the whole cycle, so no process's update is lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

TEMP_PREFIX = ".tmp-"  # a killed writer's leftovers start with it (the library sweeps them)


@contextlib.contextmanager
def atomic_paths(paths: Sequence[str | Path], suffix: str | None = None) -> Iterator[list[Path]]:
    """Fresh temporary paths beside each of `paths` to write the new files to (for writers that
    want a path: faiss, safetensors, ffmpeg); renamed onto `paths` in their order when the block
    ends without an error (a reader that checks the last one sees the others already complete),
    all removed when it raises or a rename fails. `suffix` (default: each path's own) matters to
    writers that choose a format by extension (ffmpeg)."""
    targets = [Path(p) for p in paths]
    temps: list[Path] = []
    try:
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                dir=target.parent,
                prefix=f"{TEMP_PREFIX}{target.stem}.",
                suffix=target.suffix if suffix is None else suffix,
            )
            os.close(fd)
            temps.append(Path(tmp))
        yield temps
        for tmp, target in zip(temps, targets, strict=True):
            os.replace(tmp, target)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)  # gone after a successful rename


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """A fresh temporary path beside `path` to write the whole new file to; renamed onto `path`
    when the block ends without an error, removed when it raises (`atomic_paths` of one)."""
    with atomic_paths([path], suffix) as (tmp,):
        yield tmp


@contextlib.contextmanager
def temporary_folder(parent: str | Path) -> Iterator[Path]:
    """A fresh private folder inside `parent` (made if missing), removed with whatever is left in
    it when the block ends: where several files are made before they are kept."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=parent, prefix=TEMP_PREFIX))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """A fresh temporary folder beside `path` to fill; renamed onto `path` (absent, or an empty
    folder) when the block ends without an error, removed with its content when it raises."""
    path = Path(path)
    with temporary_folder(path.parent) as tmp:
        yield tmp
        os.replace(tmp, path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(path, text.encode(encoding))


@contextlib.contextmanager
def exclusive_lock(path: str | Path, wait: bool = True) -> Iterator[bool]:
    """Exclusive across processes and threads (flock on a fresh descriptor of `path`, created if
    missing); yields False when `wait` is False and another holder has it."""
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)

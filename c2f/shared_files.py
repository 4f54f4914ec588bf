"""Files that other processes may read or write at the same time: whole-file replacement by a
rename, and an exclusive lock across processes.

A reader of a file written through `atomic_path` sees the old content or the new one, never half of
one; a write that fails (an exception, a full disk) leaves the old file, or none, and no temporary
file. A read-modify-write of a file shared between processes holds `exclusive_lock` on a lock file
beside it for the whole cycle, so no process's update is lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMP_PREFIX = ".tmp-"  # a killed writer's leftovers start with it (the library sweeps them)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """A fresh temporary path beside `path` to write the whole new file to; renamed onto `path`
    when the block ends without an error, removed when it raises. `suffix` (default: `path`'s own)
    matters to writers that choose a format by extension (ffmpeg)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f"{TEMP_PREFIX}{path.stem}.", suffix=path.suffix if suffix is None else suffix
    )
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)  # gone after a successful rename


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

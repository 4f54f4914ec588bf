"""The lease by which the holder of a library's write lock (c2f.shared_files.exclusive_lock on
write.lock) claims what it writes to a shared vector store (c2f/index/external_store.py)."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

_PROCESS_TAG = secrets.token_hex(4)  # tells apart two processes that got the same pid


@dataclass(frozen=True)
class WriterLease:
    """Who writes to a vector store (c2f.index.external_store): `lock` names the library write lock
    the writer holds (host and path), `writer` the holder (its lock, process id and a tag)."""

    lock: str
    writer: str


def writer_lease(lock_path: Path) -> WriterLease:
    """The lease of this process as the holder of the write lock at `lock_path` (call it while
    holding it). Whoever holds that lock knows every earlier holder is gone (a dead process's flock
    is released), so what they left pending in a store is its to clean."""
    lock = f"{socket.gethostname()}:{Path(lock_path).resolve()}"
    return WriterLease(lock, f"{lock}#{os.getpid()}-{_PROCESS_TAG}")

"""How our worker processes wait (decoding workers, the decode-layout measurement): never for ever.

A parent killed by SIGKILL (or the OOM killer) sends neither the start signal nor the last None,
nor reads another result, and `daemon=True` only covers a parent that exits normally. So a worker
waits in steps of CHECK_EVERY_S and ends once its parent is gone: `ParentGone` is a SystemExit,
which no `except Exception` of a video's failure catches and which ends the process with status 0.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
from typing import Any

CHECK_EVERY_S = 1.0


class ParentGone(SystemExit):
    """The process that started this one is gone: nobody sends work or reads results any more."""


def parent_is_gone() -> bool:
    parent = mp.parent_process()  # None in a process that multiprocessing did not start
    return parent is not None and not parent.is_alive()


def check_parent() -> None:
    """Raise ParentGone when the parent is gone (between two pieces of a long job)."""
    if parent_is_gone():
        raise ParentGone


def get_from_parent(source: Any) -> Any:
    """`source.get()` (a multiprocessing queue), raising ParentGone instead of waiting for ever."""
    while True:
        try:
            return source.get(timeout=CHECK_EVERY_S)
        except queue.Empty:
            check_parent()


def wait_for_parent(event: Any) -> None:
    """`event.wait()` (a multiprocessing event), raising ParentGone instead of waiting for ever."""
    while not event.wait(CHECK_EVERY_S):
        check_parent()


__all__ = ["CHECK_EVERY_S", "ParentGone", "check_parent", "get_from_parent", "parent_is_gone", "wait_for_parent"]

"""Heavy jobs (indexing, evaluation) shared fairly between visitors.

Each kind of job has its own bounded pool of slots, so an evaluation never holds up indexing; a
visitor has at most one job at a time (of any kind: a second is refused at once, with the reason);
jobs waiting for a slot are served first come, first served, and at most `waiting` of them may
wait (more are refused at once: "busy, try again"), so waiting requests never pile up on the
server's threads.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from c2f.errors import C2FError


class BusyError(C2FError):
    pass


class _Pool:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.running = 0
        self.queue: deque[object] = deque()  # tickets of the jobs waiting, first come first


class Jobs:
    def __init__(self, slots: dict[str, int], waiting: int) -> None:
        self._pools = {kind: _Pool(n) for kind, n in slots.items()}
        self.waiting = waiting
        self._cond = threading.Condition()
        self._busy: dict[str | None, str] = {}  # visitor -> the kind of job they run or wait for

    def busy(self) -> set[str | None]:
        """The visitors with a job running or waiting (the idle sweep leaves them alone)."""
        with self._cond:
            return set(self._busy)

    def running(self, kind: str) -> int:
        with self._cond:
            return self._pools[kind].running

    @contextmanager
    def slot(self, who: str | None, kind: str) -> Iterator[float]:
        """Hold a slot of `kind` for `who` while the block runs; yields the seconds waited."""
        pool = self._pools[kind]
        ticket = object()
        t0 = time.monotonic()
        with self._cond:
            if who in self._busy:
                raise BusyError(f"you already have a job running ({self._busy[who]}): wait until it ends")
            if pool.running >= pool.slots and sum(len(p.queue) for p in self._pools.values()) >= self.waiting:
                raise BusyError("the demo is busy with other visitors' jobs: try again in a minute")
            self._busy[who] = kind
            pool.queue.append(ticket)
            while not (pool.running < pool.slots and pool.queue[0] is ticket):
                self._cond.wait()
            pool.queue.popleft()
            pool.running += 1
            self._cond.notify_all()  # the next in line may have a free slot too
        try:
            yield time.monotonic() - t0
        finally:
            with self._cond:
                pool.running -= 1
                del self._busy[who]
                self._cond.notify_all()


__all__ = ["BusyError", "Jobs"]

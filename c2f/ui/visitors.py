"""The visitors that exist on a public deployment, and who may become one.

A visitor exists from their first upload (videos or annotations) on, as a folder
`<library root>/visitors/<id>/`: a visitor who only searches has no folder, nothing in memory and
costs nothing. Becoming one is rate-limited (new visitors per minute, for the whole server) and
capped (visitors at once); past either, one clear message, and nobody else is affected. A
visitor's last activity is the modification time of their folder (touched at most once a minute),
so it survives a restart and needs no memory per visitor.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from pathlib import Path

from c2f.errors import C2FError
from c2f.ui.identity import VISITOR_ID

TOUCH_EVERY_SECONDS = 60.0


class DemoFullError(C2FError):
    """A global cap is reached: the message every visitor sees then."""

    def __init__(self, what: str) -> None:
        super().__init__(f"the demo is full, try later ({what})")


class RateLimit:
    """At most `count` events in any window of `seconds` (a sliding window)."""

    def __init__(self, count: int, seconds: float = 60.0) -> None:
        self.count = count
        self.seconds = seconds
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def take(self, now: float | None = None) -> bool:
        """Record one event and return True, or return False when the window is full."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._times and now - self._times[0] >= self.seconds:
                self._times.popleft()
            if len(self._times) >= self.count:
                return False
            self._times.append(now)
            return True


class Visitors:
    def __init__(self, root: Path, max_visitors: int, new_per_minute: int) -> None:
        self.root = root  # <library root>/visitors
        self.max_visitors = max_visitors
        self.new_visitors = RateLimit(new_per_minute, 60.0)
        self._lock = threading.Lock()  # admission only (counting, then creating, is one step)
        self._touched: dict[str, float] = {}  # existing visitors only: bounded by max_visitors

    def home(self, who: str) -> Path:
        return self.root / who

    def exists(self, who: str) -> bool:
        return self.home(who).is_dir()

    def live(self) -> list[str]:
        """The ids of every visitor with a folder."""
        if not self.root.is_dir():
            return []
        return sorted(d.name for d in self.root.iterdir() if d.is_dir() and VISITOR_ID.fullmatch(d.name))

    def admit(self, who: str) -> Path:
        """The visitor's folder, made now if this is their first upload; refused (DemoFullError)
        past the cap of visitors or the rate of new ones."""
        home = self.home(who)
        if home.is_dir():
            return home
        with self._lock:
            if home.is_dir():
                return home
            if len(self.live()) >= self.max_visitors:
                raise DemoFullError(f"{self.max_visitors} visitors have videos here")
            if not self.new_visitors.take():
                raise DemoFullError(f"more than {self.new_visitors.count} new visitors this minute")
            home.mkdir(parents=True)
            return home

    def touch(self, who: str, now: float | None = None) -> None:
        """Note activity of an existing visitor (their folder's time; at most once a minute)."""
        now = time.time() if now is None else now
        if now - self._touched.get(who, 0.0) < TOUCH_EVERY_SECONDS:
            return
        try:
            os.utime(self.home(who), (now, now))
        except FileNotFoundError:  # no folder: a visitor who only searches, nothing to note
            return
        self._touched[who] = now

    def last_active(self, who: str) -> float:
        try:
            return self.home(who).stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def idle(self, idle_seconds: float, now: float | None = None) -> list[str]:
        """Visitors whose last activity is more than `idle_seconds` ago."""
        now = time.time() if now is None else now
        return [v for v in self.live() if now - self.last_active(v) > idle_seconds]

    def forget(self, who: str) -> None:
        self._touched.pop(who, None)


__all__ = ["DemoFullError", "RateLimit", "Visitors"]

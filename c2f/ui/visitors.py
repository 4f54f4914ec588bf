"""Who a visitor is on a public deployment, and where their private files live.

A visitor is a random id signed with the server's secret (HMAC), kept in the browser; a value that
does not verify is replaced by a new one, so nobody can claim another visitor's id. API clients
without a browser are identified by their Gradio session. The media folder of a visitor is named
by a second HMAC of the id, so the URL of a visitor's video reveals nothing that opens the library.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import threading
import time
from pathlib import Path


class VisitorKeys:
    def __init__(self, secret: str | None = None) -> None:
        self._secret = (secret or os.environ.get("C2F_SECRET") or secrets.token_hex(32)).encode()

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()[:32]

    def new_token(self) -> str:
        """A fresh signed visitor token: '<id>.<signature>'."""
        vid = secrets.token_hex(16)
        return f"{vid}.{self._mac('visitor', vid)}"

    def verify(self, token: object) -> str | None:
        """The visitor id of a token signed by this server, else None."""
        if not isinstance(token, str) or token.count(".") != 1:
            return None
        vid, sig = token.split(".")
        ok = len(vid) == 32 and hmac.compare_digest(sig, self._mac("visitor", vid))
        return vid if ok else None

    def from_session(self, session_hash: str) -> str:
        """A visitor id for an API client, stable for its Gradio session."""
        return self._mac("session", session_hash)

    def media_name(self, visitor_id: str) -> str:
        return self._mac("media", visitor_id)


class IdleSweeper:
    """Removes the folders of visitors not seen for `idle_seconds` (checked at most once a minute)."""

    def __init__(self, idle_seconds: float, every_seconds: float = 60.0) -> None:
        self.idle_seconds = idle_seconds
        self.every_seconds = every_seconds
        self._last_seen: dict[str, float] = {}
        self._last_sweep = 0.0
        self._lock = threading.Lock()

    def seen(self, visitor_id: str) -> None:
        with self._lock:
            self._last_seen[visitor_id] = time.time()

    def due(self, now: float | None = None) -> bool:
        """Whether a sweep would run now (so callers list the folders only then)."""
        return (time.time() if now is None else now) - self._last_sweep >= self.every_seconds

    def sweep(self, folders_of: dict[str, list[Path]], now: float | None = None) -> list[str]:
        """Delete the folders of idle visitors; `folders_of` maps visitor id -> its folders on disk
        (a visitor unknown to this process counts from its folders' modification time)."""
        now = time.time() if now is None else now
        with self._lock:
            if now - self._last_sweep < self.every_seconds:
                return []
            self._last_sweep = now
            removed = []
            for vid, folders in folders_of.items():
                existing = [f for f in folders if f.exists()]
                last = self._last_seen.get(vid) or max((f.stat().st_mtime for f in existing), default=0.0)
                if now - last > self.idle_seconds:
                    for f in existing:
                        shutil.rmtree(f, ignore_errors=True)
                    self._last_seen.pop(vid, None)
                    removed.append(vid)
            return removed

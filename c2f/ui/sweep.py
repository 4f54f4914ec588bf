"""Removing what nobody will use again, in a background thread (never inside a visitor's request,
never under a lock a request needs):

- an idle visitor (no activity for `idle_minutes`, no job running): their library, media and
  export folders;
- at start-up, before the first request: the same for visitors who went idle while the server was
  down, then every media or export folder that belongs to no live visitor (left by a key that
  changed, a sweep that was killed, an older version), so its URLs answer 404 for good.

A folder is first renamed to a hidden name in the same parent (atomic; the media route and the
visitor registry ignore hidden names), then deleted: a request never sees half a folder.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from c2f.shared_files import TEMP_PREFIX
from c2f.ui.collection import LOCAL, SHOWCASE
from c2f.ui.identity import VisitorKeys

GONE_PREFIX = ".gone-"
log = logging.getLogger(__name__)


def remove_folder(folder: Path) -> None:
    """Rename `folder` out of sight, then delete it."""
    gone = folder.with_name(f"{GONE_PREFIX}{folder.name}-{secrets.token_hex(4)}")
    try:
        folder.rename(gone)
    except FileNotFoundError:
        return
    shutil.rmtree(gone, ignore_errors=True)


class Sweeper:
    def __init__(
        self,
        visitors,  # c2f.ui.visitors.Visitors
        folders_of: Callable[[str], list[Path]],  # a visitor's folders: library, media, exports
        forget: Callable[[str], None],  # drop what the process keeps of a removed visitor
        busy: Callable[[], set],  # visitors with a job running or waiting
        idle_seconds: float,
        every_seconds: float,
    ) -> None:
        self.visitors = visitors
        self.folders_of = folders_of
        self.forget = forget
        self.busy = busy
        self.idle_seconds = idle_seconds
        self.every_seconds = every_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep_idle(self, now: float | None = None) -> list[str]:
        """Remove every idle visitor without a job; returns their ids."""
        busy = self.busy()
        removed = []
        for who in self.visitors.idle(self.idle_seconds, now):
            if who in busy:
                continue
            self.forget(who)  # first: no request opens their library again while it goes
            for folder in self.folders_of(who):
                remove_folder(folder)
            self.visitors.forget(who)
            removed.append(who)
        if removed:
            log.warning("c2f: removed %d idle visitor(s)", len(removed))
        return removed

    def start(self) -> None:
        """Sweep every `every_seconds` in a daemon thread, until `stop()`."""

        def loop() -> None:
            while not self._stop.wait(self.every_seconds):
                try:
                    self.sweep_idle()
                except Exception:  # a sweep that failed is tried again next time
                    log.exception("c2f: the idle sweep failed")

        self._thread = threading.Thread(target=loop, name="c2f-sweep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


def orphan_folders(
    media_root: Path, export_root: Path, live: list[str], keys: VisitorKeys | None
) -> list[Path]:
    """Media and export folders that belong to no live visitor (and leftovers of removals)."""
    media_names = {SHOWCASE, LOCAL}
    export_names = {LOCAL}
    if keys is not None:
        media_names |= {keys.media_name(v) for v in live}
        export_names |= {keys.export_name(v) for v in live}
    found = []
    for root, keep in ((media_root, media_names), (export_root, export_names)):
        if root.is_dir():
            found += [d for d in sorted(root.iterdir()) if d.name not in keep]
    return found


def remove_orphans(
    library_root: Path, media_root: Path, export_root: Path, live: list[str], keys: VisitorKeys | None
) -> list[Path]:
    """Start-up hygiene: delete the orphan media and export folders, and leftovers of removals
    killed half way (hidden '.gone-*' names); returns what was deleted."""
    found = orphan_folders(media_root, export_root, live, keys)
    found += sorted((library_root / "visitors").glob(f"{GONE_PREFIX}*"))
    found += sorted(export_root.glob(f"*/{TEMP_PREFIX}*"))  # downloads a killed request was making
    for folder in found:
        if folder.is_dir() and not folder.name.startswith((GONE_PREFIX, TEMP_PREFIX)):
            remove_folder(folder)
        elif folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        else:
            folder.unlink(missing_ok=True)
    if found:
        log.warning("c2f: removed %d media/export folder(s) of no live visitor", len(found))
    return found


__all__ = ["Sweeper", "orphan_folders", "remove_folder", "remove_orphans"]

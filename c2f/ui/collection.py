"""The demo's collections: a library plus the media folder its visitor may fetch.

A local run has one collection per feature preset; a public deployment has the read-only
*showcase* (the bundled examples, for everyone) and one private collection per visitor, opened
only once the visitor has a folder (their first upload): asking for the collection of a visitor
who has none gives None and makes nothing, on disk or in memory.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from c2f.features import FeatureSettings
from c2f.library import Library
from c2f.ui.identity import VisitorKeys

SHOWCASE = "showcase"  # the `who` of the shared read-only collection
LOCAL = "local"  # the media folder name of a local (single-user) run


@dataclass
class Collection:
    library: Library
    media: Path  # only playable videos and thumbnails: the one folder served to the browser
    read_only: bool = False


class Collections:
    def __init__(
        self, library_root: Path, media_root: Path, keys: VisitorKeys | None, device: str | None
    ) -> None:
        self.library_root = library_root
        self.media_root = media_root
        self.keys = keys
        self.device = device
        self._open: dict[tuple[str, str], Collection] = {}
        self._lock = threading.Lock()  # guards the dict only; never held while working

    def folders(self, who: str | None) -> tuple[Path, Path]:
        """(library folder, media folder) of `who`, for every preset (not made here)."""
        if who is None:
            return self.library_root, self.media_root / LOCAL
        if who == SHOWCASE:
            return self.library_root / SHOWCASE, self.media_root / SHOWCASE
        assert self.keys is not None  # visitors exist on a public deployment only
        return self.library_root / "visitors" / who, self.media_root / self.keys.media_name(who)

    def media_folder(self, who: str) -> Path:
        return self.folders(who)[1]

    def open(self, settings: FeatureSettings, who: str | None) -> Collection:
        """The collection of `who` in `settings`' preset, its library made when new."""
        key = (settings.preset, who or "")
        with self._lock:
            if key not in self._open:
                lib_dir, media_dir = self.folders(who)
                self._open[key] = Collection(
                    Library(lib_dir / settings.preset, settings=settings, device=self.device),
                    media_dir / settings.preset,
                    read_only=who == SHOWCASE,
                )
            return self._open[key]

    def find(self, settings: FeatureSettings, who: str | None) -> Collection | None:
        """The collection of `who` when it exists on disk, else None (nothing is made)."""
        if who is None or who == SHOWCASE:
            return self.open(settings, who)
        with self._lock:
            found = self._open.get((settings.preset, who))
        if found is not None:
            return found
        if not (self.folders(who)[0] / settings.preset).is_dir():
            return None
        return self.open(settings, who)

    def forget(self, who: str) -> None:
        """Close every collection of `who` (their folders are going away)."""
        with self._lock:
            for key in [k for k in self._open if k[1] == who]:
                del self._open[key]


__all__ = ["LOCAL", "SHOWCASE", "Collection", "Collections"]

"""The files of a library folder: where each lives, atomic copies of added videos, the feature
files (with an in-memory cache) and the cleanup of what a killed writer left behind."""

from __future__ import annotations

import shutil
import threading
from collections import OrderedDict
from pathlib import Path

from c2f.features import ClipFeatures, FeatureSettings, load_features
from c2f.shared_files import atomic_path

FEATURE_CACHE_SIZE = 256  # feature files kept in memory (a 1 h clip-only video is ~5 MB)


class LibraryFiles:
    """Paths inside a library folder (created on first use) and the copying of added videos."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        for sub in ("videos", "features", "indexes"):
            (self.root / sub).mkdir(exist_ok=True)

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.sqlite"

    @property
    def lock_path(self) -> Path:
        return self.root / "write.lock"

    def feature_path(self, video_id: str) -> Path:
        return self.root / "features" / f"{video_id}.safetensors"

    def index_dir(self, fingerprint: str) -> Path:
        return self.root / "indexes" / fingerprint

    def index_dirs(self) -> list[Path]:
        """Every index folder (one per search backend that was used), by name."""
        return sorted(p for p in (self.root / "indexes").iterdir() if p.is_dir())

    def store_video(self, src: Path, video_id: str, copy: bool) -> Path:
        """The file the library plays: an atomic copy under videos/, or the original itself."""
        if not copy:
            return src.resolve()
        dest = self.root / "videos" / f"{video_id}{src.suffix.lower()}"
        if not dest.is_file() or dest.stat().st_size != src.stat().st_size:
            with atomic_path(dest) as tmp:
                shutil.copyfile(src, tmp)
        return dest

    def clean_temp_files(self) -> None:
        """Leftovers of a killed writer (only called while holding the write lock)."""
        for pattern in ("videos/.tmp-*", "features/.tmp-*", "indexes/*/.tmp-*", "indexes/*/v*/.tmp-*"):
            for p in self.root.glob(pattern):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)


class FeatureCache:
    """The feature files read last (least recently used dropped first), checked against the
    library's settings when read."""

    def __init__(
        self, files: LibraryFiles, settings: FeatureSettings, size: int = FEATURE_CACHE_SIZE
    ) -> None:
        self.files = files
        self.settings = settings
        self.size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[str, ClipFeatures] = OrderedDict()

    def load(self, video_id: str) -> ClipFeatures:
        with self._lock:
            if video_id in self._items:
                self._items.move_to_end(video_id)
                return self._items[video_id]
        feats = load_features(self.files.feature_path(video_id), expected=self.settings)
        self.put(video_id, feats)
        return feats

    def put(self, video_id: str, feats: ClipFeatures) -> None:
        with self._lock:
            self._items[video_id] = feats
            self._items.move_to_end(video_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def drop(self, video_id: str) -> None:
        with self._lock:
            self._items.pop(video_id, None)

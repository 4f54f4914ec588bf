"""The video library: catalog, feature files and indexes in one folder."""

from c2f.library.catalog import VideoRecord
from c2f.library.library import AddReport, Library, default_library_root, find_videos, open_library

__all__ = ["AddReport", "Library", "VideoRecord", "default_library_root", "find_videos", "open_library"]

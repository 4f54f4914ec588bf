"""Files a visitor downloads (an evaluation's TVR predictions, later moment exports): one folder per
visitor, each file replaced whole under its name, counted in the visitor's disk quota and removed
with the visitor (idle sweep, start-up hygiene).

The folders live under the app's temporary folder (AppConfig.export_root), never under the library
root: Gradio copies a returned file into its own cache to serve it, so nothing here is ever served
from here. A
visitor's folder is named by an HMAC of their id (`VisitorKeys.export_name`).
"""

from __future__ import annotations

import re
from pathlib import Path

from c2f.errors import C2FError
from c2f.shared_files import atomic_write_bytes
from c2f.ui.collection import LOCAL
from c2f.ui.identity import VisitorKeys
from c2f.ui.media import folder_bytes

_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,100}")


class Exports:
    def __init__(self, root: Path, keys: VisitorKeys | None) -> None:
        self.root = root
        self.keys = keys

    def folder_name(self, who: str | None) -> str:
        if who is None:
            return LOCAL
        assert self.keys is not None  # visitors exist on a public deployment only
        return self.keys.export_name(who)

    def folder(self, who: str | None) -> Path:
        return self.root / self.folder_name(who)

    def used(self, who: str | None) -> int:
        return folder_bytes(self.folder(who))

    def write(self, who: str | None, name: str, data: bytes, room: float = float("inf")) -> Path:
        """Write (or replace) the visitor's file `name`; `room`: the bytes their quota has left,
        not counting this file's older version (which the new one replaces)."""
        if not _NAME.fullmatch(name):
            raise ValueError(f"not an export file name: {name!r}")
        path = self.folder(who) / name
        old = path.stat().st_size if path.is_file() else 0
        if len(data) > room + old:
            raise C2FError(
                f"the download ({len(data) / 1e6:.1f} MB) does not fit in your disk quota: remove a video first"
            )
        return atomic_write_bytes(path, data)


__all__ = ["Exports"]

"""Files a visitor downloads (an evaluation's TVR predictions, a search's moments as CSV, JSON, EDL
or cut clips): one folder per visitor, each file replaced whole under its name, counted in the
visitor's disk quota and removed with the visitor (idle sweep, start-up hygiene).

The folders live under the app's temporary folder (AppConfig.export_root), never under the library
root: Gradio copies a returned file into its own cache to serve it, so nothing here is ever served
from here. A
visitor's folder is named by an HMAC of their id (`VisitorKeys.export_name`).
"""

from __future__ import annotations

import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from c2f.errors import C2FError
from c2f.shared_files import TEMP_PREFIX, atomic_write_bytes
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

    def produce(
        self,
        who: str | None,
        make: Callable[[Path], list[Path]],
        bundle: str,
        room: float = float("inf"),
    ) -> Path:
        """The visitor's file made by `make(folder) -> the files it wrote there`, in a fresh
        staging folder inside their export folder (so it counts while it is made): one file keeps
        its name, several are zipped into `bundle`. It replaces the visitor's file of that name
        only when it fits in `room` (the bytes their quota has left, not counting the file it
        replaces); else it is deleted and refused."""
        folder = self.folder(who)
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}export-", dir=folder) as staging:
            files = make(Path(staging))
            made = files[0] if len(files) == 1 else Path(staging) / bundle
            if len(files) > 1:
                with zipfile.ZipFile(made, "w", zipfile.ZIP_STORED) as zf:
                    for f in files:
                        zf.write(f, f.name)
            if not _NAME.fullmatch(made.name):
                raise ValueError(f"not an export file name: {made.name!r}")
            path = folder / made.name
            old = path.stat().st_size if path.is_file() else 0
            size = made.stat().st_size
            if size > room + old:
                raise C2FError(
                    f"the download ({size / 1e6:.1f} MB) does not fit in your disk quota: "
                    "export fewer moments, or remove a video first"
                )
            os.replace(made, path)
        return path


__all__ = ["Exports"]

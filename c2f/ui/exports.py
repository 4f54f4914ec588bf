"""Files a visitor downloads (an evaluation's TVR predictions; moment exports: anything a function
writes into a folder, as c2f.library.Library.export does): one folder per visitor, each file
replaced whole under its name (made in a private folder first, then renamed), counted in the
visitor's disk quota and removed with the visitor (idle sweep, start-up hygiene).

The folders live under the app's temporary folder (AppConfig.export_root), never under the library
root: Gradio copies a returned file into its own cache to serve it, so nothing here is ever served
from here. A
visitor's folder is named by an HMAC of their id (`VisitorKeys.export_name`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from c2f.errors import C2FError
from c2f.shared_files import temporary_folder
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

    def produce(
        self, who: str | None, make: Callable[[Path], Iterable[Path]], room: float = float("inf")
    ) -> list[Path]:
        """The files `make(folder)` writes into a fresh private folder, moved into the visitor's
        folder (replacing files of the same names) when they fit in `room`, the bytes their quota
        has left not counting the files they replace; else deleted, with the reason."""
        folder = self.folder(who)
        with temporary_folder(folder) as work:
            made = [Path(p) for p in make(work)]
            for p in made:
                if p.parent != work or not _NAME.fullmatch(p.name):
                    raise ValueError(f"not an export file of this folder: {p.name!r}")
            replaced = sum((folder / p.name).stat().st_size for p in made if (folder / p.name).is_file())
            size = folder_bytes(work)
            if size > room + replaced:
                raise C2FError(
                    f"the download ({size / 1e6:.1f} MB) does not fit in your disk quota: remove a video first"
                )
            for p in made:
                os.replace(p, folder / p.name)  # complete files: each move is atomic
            return [folder / p.name for p in made]


__all__ = ["Exports"]

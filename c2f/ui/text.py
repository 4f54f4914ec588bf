"""Text shown to a visitor never carries a server path: absolute paths are cut to their file name."""

from __future__ import annotations

import re

# an absolute POSIX or Windows path of two or more parts, up to a space or a quote
_PATH = re.compile(r"""(?:[A-Za-z]:)?(?:[\\/][^\s'"\\/:]+)+[\\/]([^\s'"\\/:]+)""")


def public_text(text: str) -> str:
    return _PATH.sub(r"\1", text)

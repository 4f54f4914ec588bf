"""Decoding text files written by other tools: a byte-order mark first, then UTF-8, then stated fallbacks.

Subtitles and annotation files come from editors that save UTF-16 (Windows Notepad's "Unicode"),
UTF-8 with a BOM, or a legacy 8-bit code page. `decode_text` never guesses silently: it tries, in
order, the encoding named by a BOM, UTF-16 without a BOM (recognised by its NUL bytes, which no
8-bit text has), strict UTF-8, then each fallback the caller names.
"""

from __future__ import annotations

import codecs

# (mark, codec that reads and drops it); UTF-32 first: its LE mark starts with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _utf16_without_bom(data: bytes) -> str | None:
    """'utf-16-le' / 'utf-16-be' when most high bytes of one parity are NUL (ASCII-range UTF-16)."""
    if len(data) < 4 or len(data) % 2:
        return None
    even, odd = data[0::2], data[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) == 0:
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) == 0:
        return "utf-16-be"
    return None


def decode_text(data: bytes, fallbacks: tuple[str, ...] = ()) -> tuple[str, str]:
    """(text, encoding used). Raises UnicodeDecodeError (of UTF-8, or of a BOM's encoding) when
    no candidate decodes the bytes; 'latin-1' as the last fallback decodes anything."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding), encoding  # a BOM is a promise: no fallback
    utf16 = _utf16_without_bom(data)
    if utf16 is not None:
        try:
            return data.decode(utf16), utf16
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        error = exc
    for encoding in fallbacks:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise error


def locate_decode_error(data: bytes, exc: UnicodeDecodeError) -> tuple[int, str]:
    """(1-based line, 'byte 0xe9 is not valid utf-8') of a decode failure at exc.start."""
    line = data.count(b"\n", 0, exc.start) + 1
    return line, f"byte 0x{data[exc.start]:02x} is not valid {exc.encoding}"

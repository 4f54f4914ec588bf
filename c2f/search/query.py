"""Query text checks shared by every backend, and the encoded query they hand to the engine."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from c2f.errors import QueryError

MAX_QUERY_CHARS = 2000  # far beyond any text encoder's context; stops pathological inputs early


@dataclass
class QueryEncoding:
    text: str
    vector: np.ndarray  # (d,) in the retrieval space of the backend's index
    notes: list[str] = field(default_factory=list)  # shown to the user, e.g. "the query was cut"
    extra: dict = field(default_factory=dict)  # backend-specific (e.g. token states for localization)
    # Queries by example (c2f.search.by_example); a text query keeps these defaults.
    by_example: bool = False  # a moment or picture in the query: ranked and localized on `vector` alone
    scale: float = 1.0  # a clip's score is scale * <vector / |vector|, clip> (a mixed query's |m|)
    exclude: dict[str, tuple[int, int]] = field(default_factory=dict)  # video_id -> (first, last) clips left out


def clean_query(query: object) -> str:
    """Collapse whitespace; refuse empty queries, and text that is not valid Unicode, with a plain message."""
    if not isinstance(query, str):
        raise QueryError(f"the query must be text, not {type(query).__name__}")
    text = " ".join(query.split())
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate, e.g. bytes that were not UTF-8 in argv
        raise QueryError(
            f"the query is not valid text: character {exc.start + 1} (U+{ord(text[exc.start]):04X}) "
            "is a lone surrogate (text that was not UTF-8?); retype the query"
        ) from None
    if not text:
        raise QueryError("the query is empty: type a sentence that describes the moment you are looking for")
    return text[:MAX_QUERY_CHARS]

"""The error-analysis tab's evaluation, bounded on a public deployment: an annotation file of at
most `max_mb` and `max_rows` rows (more is refused before anything runs, with the numbers), and at
most `max_seconds` of searching (past it, the evaluation stops with the reason)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from c2f.errors import AnnotationError, C2FError


class EvaluationLimitError(C2FError):
    pass


def check_annotation_file(path: Path, max_rows: int, max_mb: float) -> int:
    """The number of (non-blank) rows of the file; refused past either limit."""
    if not path.is_file():
        raise AnnotationError(str(path), [(0, "the file is not there")])
    size = path.stat().st_size
    if size > max_mb * 1024 * 1024:
        raise EvaluationLimitError(
            f"the annotation file is {size / 1e6:.0f} MB: this server evaluates files up to {max_mb:g} MB"
        )
    rows = 0
    with open(path, "rb") as f:
        for line in f:
            rows += bool(line.strip())
            if rows > max_rows:
                raise EvaluationLimitError(
                    f"the annotation file has more than {max_rows} rows: this server evaluates up to "
                    f"{max_rows} at once (split the file)"
                )
    return rows


def evaluate_bounded(
    library,
    backend,
    annotations: Path,
    top_k: int,
    progress: Callable[[float, str], None] | None = None,
    max_seconds: float | None = None,
):
    """c2f.analysis.evaluate_library, stopped past `max_seconds` (None: no limit)."""
    from c2f.analysis import evaluate_library

    deadline = None if max_seconds is None else time.monotonic() + max_seconds

    def bounded_progress(fraction: float, desc: str) -> None:
        if deadline is not None and time.monotonic() >= deadline:
            raise EvaluationLimitError(
                f"the evaluation ran past this server's {max_seconds:g} s limit ({desc}): "
                "evaluate fewer rows at once"
            )
        if progress is not None:
            progress(fraction, desc)

    return evaluate_library(library, backend, annotations, top_k_videos=int(top_k), progress=bounded_progress)


__all__ = ["EvaluationLimitError", "check_annotation_file", "evaluate_bounded"]

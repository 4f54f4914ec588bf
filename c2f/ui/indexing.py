"""Storing an admitted upload in a collection: the library indexes the videos (subtitles paired by
file stem, or speech transcribed), then each new video gets its playable copy and thumbnail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from c2f.errors import C2FError, reason_about
from c2f.ui.collection import Collection
from c2f.ui.media import MediaFiles
from c2f.ui.quotas import UploadPlan


@dataclass
class IndexOutcome:
    added: list[str]
    duplicates: list[str]
    failed: list[tuple[str, str]]  # (file name, plain-words reason)

    def summary(self) -> str:
        parts = [f"{len(self.added)} video(s) added"]
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} already in the library")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return ", ".join(parts)


def index_upload(
    coll: Collection,
    plan: UploadPlan,
    media: MediaFiles,
    progress: Callable[[str, float, float], None] | None = None,
    transcriber=None,
) -> IndexOutcome:
    """Index `plan`'s videos into `coll` (nothing when it admitted none)."""
    if not plan.videos:
        return IndexOutcome([], [], list(plan.failed))
    report = coll.library.add(
        plan.videos, copy=True, subtitles=plan.subtitles, progress=progress, transcriber=transcriber
    )
    failed = list(plan.failed)
    for rec in report.added:
        try:
            media.of(coll.library, coll.media, rec.video_id)
        except C2FError as exc:
            failed.append((rec.name, f"indexed, but cannot be played in the browser: {exc}"))
    return IndexOutcome(
        [r.name for r in report.added],
        [n for n, _ in report.duplicates],
        failed + [(n, reason_about(n, why)) for n, why in report.failed],  # the name said once
    )


__all__ = ["IndexOutcome", "index_upload"]

"""The found moments as CSV and JSON: one row per moment, best first (rank 1)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from c2f.export import ExportMoment

CSV_COLUMNS = ["rank", "video_id", "name", "start", "end", "score"]


def moment_row(rank: int, m: ExportMoment) -> dict:
    """start/end in seconds (3 decimals, the clip grid is far coarser), score to 6 decimals."""
    return {
        "rank": rank,
        "video_id": m.video_id,
        "name": m.name,
        "start": round(m.start, 3),
        "end": round(m.end, 3),
        "score": round(m.score, 6),
    }


def moments_csv(moments: Sequence[ExportMoment], files: Sequence[str] | None = None) -> str:
    """CSV text (header first); `files`: each moment's clip file name, as a last column."""
    out = io.StringIO()
    writer = csv.DictWriter(out, [*CSV_COLUMNS, *(["file"] if files is not None else [])], lineterminator="\n")
    writer.writeheader()
    for rank, m in enumerate(moments, 1):
        row = moment_row(rank, m)
        if files is not None:
            row["file"] = files[rank - 1]
        writer.writerow(row)
    return out.getvalue()


def moments_json(moments: Sequence[ExportMoment], title: str) -> str:
    """{"title": ..., "moments": [{rank, video_id, name, start, end, score}, ...]}."""
    rows = [moment_row(rank, m) for rank, m in enumerate(moments, 1)]
    return json.dumps({"title": title, "moments": rows}, ensure_ascii=False, indent=1) + "\n"

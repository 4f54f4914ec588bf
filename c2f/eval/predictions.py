"""The official TVR prediction file: {"video2idx": {...}, "VCMR": [...], "SVMR": [...], "VR": [...]}.

Each task entry: {"desc_id", "desc", "predictions": [[video_idx, st, ed, score], ...]} (best first).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from c2f.errors import C2FError

TASKS = ("VCMR", "SVMR", "VR")


@dataclass
class TVRPredictions:
    video2idx: dict[str, int]
    tasks: dict[str, list[dict]] = field(default_factory=dict)  # task -> entries

    def to_json(self) -> dict:
        return {"video2idx": self.video2idx, **{t: self.tasks[t] for t in TASKS if t in self.tasks}}


def write_predictions(preds: TVRPredictions, path: str | Path) -> Path:
    """Write the official JSON layout; returns the path."""
    path = Path(path)
    path.write_text(json.dumps(preds.to_json()), encoding="utf-8")
    return path


def read_predictions(path: str | Path) -> TVRPredictions:
    """Read and validate a prediction file; C2FError says what is wrong with a malformed one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise C2FError(f"{path}: not a readable prediction file ({exc})") from None
    return parse_predictions(data, str(path))


def parse_predictions(data: object, where: str = "predictions") -> TVRPredictions:
    """Validate the structure of a decoded prediction file (numbers are checked when scoring)."""
    if not isinstance(data, dict) or not isinstance(data.get("video2idx"), dict):
        raise C2FError(
            f"{where}: a prediction file is an object with 'video2idx' and task lists (VCMR/SVMR/VR)"
        )
    video2idx = data["video2idx"]
    bad = [k for k, v in video2idx.items() if not isinstance(v, int) or isinstance(v, bool)]
    if bad:
        raise C2FError(f"{where}: video2idx maps video names to integers; {bad[0]!r} is not")
    tasks = {}
    for task in TASKS:
        if task not in data:
            continue
        entries = data[task]
        if not isinstance(entries, list):
            raise C2FError(f"{where}: {task} must be a list")
        seen = set()
        for n, e in enumerate(entries):
            if not isinstance(e, dict) or "desc_id" not in e or not isinstance(e.get("predictions"), list):
                raise C2FError(f"{where}: {task}[{n}] needs 'desc_id' and a 'predictions' list")
            if not isinstance(e["desc_id"], (int, str)):
                raise C2FError(f"{where}: {task}[{n}] desc_id must be an integer or a string")
            if e["desc_id"] in seen:
                raise C2FError(f"{where}: {task} lists desc_id {e['desc_id']!r} twice")
            seen.add(e["desc_id"])
            if not all(isinstance(p, (list, tuple)) and len(p) >= 3 for p in e["predictions"]):
                raise C2FError(
                    f"{where}: {task}[{n}] (desc_id {e['desc_id']!r}): predictions are "
                    "[video_idx, st, ed, score] lists"
                )
        tasks[task] = entries
    if not tasks:
        raise C2FError(f"{where}: no task (VCMR, SVMR or VR) in the prediction file")
    return TVRPredictions(video2idx=dict(video2idx), tasks=tasks)

"""The demo's bundled examples: real short clips (credits in assets/CREDITS.md), queries that say
what is on screen, and TVR-format annotations of them for the error-analysis tab."""

from __future__ import annotations

import json
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def load_spec() -> dict:
    return json.loads((ASSETS / "examples.json").read_text())


def example_videos() -> list[Path]:
    """The bundled clips, in the order of assets/examples.json."""
    return [ASSETS / "videos" / name for name in load_spec()["videos"]]


def example_queries() -> list[str]:
    return load_spec()["queries"]


def example_annotations() -> Path:
    return ASSETS / "example_annotations.jsonl"

"""The demo's bundled examples: real short clips (credits in assets/CREDITS.md), queries that say
what is on screen, and TVR-format annotations of them for the error-analysis tab.

On a Space, longer examples can come from a Hub dataset repo named by C2F_EXAMPLES_REPO and listed
in the README's `preload_from_hub`: the platform downloads it at build time into the Hub cache, and
the demo only reads that cache (never the network). Its videos join the showcase, and a
`queries.json` (a list of sentences) at its top joins the example queries.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from c2f.video.files import find_videos

ASSETS = Path(__file__).resolve().parents[2] / "assets"
HUB_REPO_ENV = "C2F_EXAMPLES_REPO"  # e.g. "you/c2f-examples", a dataset repo
log = logging.getLogger(__name__)


def load_spec() -> dict:
    return json.loads((ASSETS / "examples.json").read_text())


def hub_examples_folder(cache_dir: str | Path | None = None) -> Path | None:
    """The local copy of the C2F_EXAMPLES_REPO dataset (preloaded), or None when unset or absent."""
    repo = os.environ.get(HUB_REPO_ENV, "").strip()
    if not repo:
        return None
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(repo, repo_type="dataset", cache_dir=cache_dir, local_files_only=True)
    except Exception as exc:  # not preloaded, or no huggingface_hub: the bundled clips alone
        log.warning(
            "%s=%s is not in the local Hub cache (%s): bundled examples only", HUB_REPO_ENV, repo, exc
        )
        return None
    return Path(folder)


def example_videos(cache_dir: str | Path | None = None) -> list[Path]:
    """The bundled clips, in the order of assets/examples.json, then the preloaded Hub dataset's."""
    bundled = [ASSETS / "videos" / name for name in load_spec()["videos"]]
    folder = hub_examples_folder(cache_dir)
    return bundled + (find_videos([folder]) if folder is not None else [])


def example_queries(cache_dir: str | Path | None = None) -> list[str]:
    queries = list(load_spec()["queries"])
    folder = hub_examples_folder(cache_dir)
    if folder is not None and (folder / "queries.json").is_file():
        queries += [str(q) for q in json.loads((folder / "queries.json").read_text())]
    return queries


def example_annotations() -> Path:
    return ASSETS / "example_annotations.jsonl"

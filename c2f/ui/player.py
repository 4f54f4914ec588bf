"""The demo's player: Gradio's video component without its per-call playability probe.

`gr.Video` runs ffprobe on every returned file (about 0.3 s on two busy cores); the files under
`playable_root` were made browser-playable once, at indexing time, so they are passed through.
(Wrapping the instance, not subclassing: a Gradio component subclass writes a .pyi stub file.)
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData


def trust_playable(player: gr.Video, playable_root: Path) -> gr.Video:
    """Make `player` pass files under `playable_root` through without probing them."""
    root = Path(playable_root).resolve()
    probe_and_convert = player.postprocess

    def postprocess(value):
        if isinstance(value, (str, Path)) and Path(value).resolve().is_relative_to(root):
            return FileData(path=str(value), orig_name=Path(value).name)
        return probe_and_convert(value)

    player.postprocess = postprocess
    return player

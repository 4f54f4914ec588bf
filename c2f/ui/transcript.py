"""The words of a video under the player: its subtitle cues (a subtitle file, or the machine
transcript of its speech), each clickable to seek the player, the cues of the found moment marked.

Says where the words come from: "machine transcript (model, language)" or "subtitle file"; a
machine transcript of the tiny test model says TINY TEST MODE (its words are random). The page
stays small whatever the file holds: at most MAX_CUES cues around the moment, each cut to
MAX_CUE_CHARS characters, and the header says how many are shown.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from c2f.features.store import Subtitle

MAX_CUES = 200
MAX_CUE_CHARS = 300

if TYPE_CHECKING:
    from c2f.library import Library
    from c2f.search.types import SearchResult

# Appended to the results block (c2f/ui/player.py): its delegated click listener seeks the player
# to any element with data-src / data-t, so a cue needs no script of its own.
TRANSCRIPT_CSS = """
.c2f-cues { line-height: 1.7; font-size: 14px; max-height: 220px; overflow-y: auto; }
.c2f-cues span, .c2f-cues mark { cursor: pointer; padding: 1px 2px; border-radius: 3px; }
.c2f-cues span:hover { background: rgba(100, 140, 220, 0.15); }
.c2f-cues mark { background: #ffd54f; color: #000; }
.c2f-cues small { color: #888; margin-right: 3px; }
"""


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}"


def source_label(source: dict | None, has_words: bool) -> str:
    """Where the words come from, in plain words."""
    if not has_words:
        return "no words: this video has no subtitle file and no speech was transcribed"
    if source and source.get("kind") == "transcript":
        lang = source.get("language") or "language unknown"
        return f"machine transcript ({source.get('model', 'unknown model')}, {lang})"
    return "subtitle file"


def transcript_html(
    name: str, cues: list[Subtitle], source: dict | None, video_url: str, moment: tuple[float, float] | None
) -> str:
    """One video's cues in time order; a cue overlapping the moment [start, end] is a <mark>."""
    esc = html.escape
    ordered = sorted(cues, key=lambda c: (c.start, c.end))
    shown = shown_cues(ordered, moment)
    label = source_label(source, bool(cues))
    if len(shown) < len(ordered):
        label += f" (the {len(shown)} cues around the moment, of {len(ordered)})"
    head = f"<p><b>Words of {esc(name)}</b>: {esc(label)}</p>"
    parts = []
    for cue in shown:
        inside = moment is not None and cue.start < moment[1] and cue.end > moment[0]
        tag = "mark" if inside else "span"
        text = cue.text if len(cue.text) <= MAX_CUE_CHARS else cue.text[: MAX_CUE_CHARS - 1] + "…"
        parts.append(
            f'<{tag} data-src="{esc(video_url)}" data-t="{cue.start:.3f}">'
            f"<small>{_clock(cue.start)}</small>{esc(text)}</{tag}>"
        )
    return f'<div id="transcript">{head}<p class="c2f-cues">{" ".join(parts)}</p></div>'


def shown_cues(ordered: list[Subtitle], moment: tuple[float, float] | None) -> list[Subtitle]:
    """At most MAX_CUES of the time-ordered cues: a window centred on the moment's first cue."""
    if len(ordered) <= MAX_CUES:
        return ordered
    at = 0 if moment is None else next((k for k, c in enumerate(ordered) if c.end > moment[0]), len(ordered))
    first = min(max(0, at - MAX_CUES // 2), len(ordered) - MAX_CUES)
    return ordered[first : first + MAX_CUES]


def result_transcript_html(library: Library, result: SearchResult, video_urls: dict[str, str]) -> str:
    """The words of the best moment's video, that moment's cues marked (empty block: no result)."""
    if not result.moments:
        return '<div id="transcript"></div>'
    top = result.moments[0]
    feats = library.load_features(top.video_id)
    return transcript_html(
        top.name, feats.subtitles, feats.subtitle_source, video_urls[top.video_id], (top.start, top.end)
    )

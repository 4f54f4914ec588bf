"""The search results as one HTML block: status line, a player on the original video (opened at the
best moment by a media fragment, `#t=start`), the top videos' thumbnails, the ranked moments and
each top video's curves with its predicted spans (c2f.ui.curves).

One block instead of a table, a gallery, a video and a status component: the browser renders one
piece of HTML per search (the costly part of a search, in the browser, was updating many Svelte
components). Clicking a moment row, a thumbnail or a span of the curves seeks the player in the
browser (RESULTS_JS), with no request to the server and no file cut. Media are served from the media folder only, by the demo's
own route under opaque names (c2f.ui.media_route: no server path reaches the browser); the browser
caches them.
"""

from __future__ import annotations

import html
from pathlib import Path

from c2f.search.types import Moment, SearchResult
from c2f.ui.curves import CURVES_CSS, CURVES_JS, result_curves_html, swatch_html
from c2f.ui.media_route import media_url

# js_on_load of the results block (runs once, when it mounts). window.c2fSeek(src, t): show `src`
# (if given and another file) and jump to `t` seconds. One delegated click listener, so re-rendered
# rows, thumbnails and spans need none of their own; the curves' hover and click (CURVES_JS). A row's
# "More like this" triggers the block's select event with {like: "VIDEO_ID:START-END"}; its "take"
# box marks it for export (read by the Export button, EXPORT_PICKED_JS).
RESULTS_JS = (
    """
window.c2fSeek = (src, t) => {
  const v = document.querySelector('#player video');
  if (!v || !Number.isFinite(t)) return;
  const go = () => { v.currentTime = t; };
  if (src && v.dataset.src !== src) {
    v.dataset.src = src;
    v.addEventListener('loadedmetadata', go, { once: true });
    v.src = src + '#t=' + t;
  } else if (v.readyState >= 1) { go(); } else { v.addEventListener('loadedmetadata', go, { once: true }); }
};
if (!element.dataset.c2fRows) {
  element.dataset.c2fRows = '1';
  element.addEventListener('click', (e) => {
    const like = e.target.closest('.c2f-like');  // "more like this": a search on the server
    if (like) { trigger('select', { like: like.dataset.like }); return; }
    if (e.target.closest('.c2f-take')) return;  // ticking a moment to export does not seek
    const row = e.target.closest('[data-t]');
    if (row) window.c2fSeek(row.dataset.src, parseFloat(row.dataset.t));
  });
}
"""
    + CURVES_JS
)

# Scoped by Gradio to the results block.
RESULTS_CSS = (
    """
.c2f-videos { display: flex; gap: 8px; flex-wrap: wrap; margin: 6px 0; }
.c2f-videos button { border: 1px solid #8884; border-radius: 6px; padding: 4px; background: none;
  cursor: pointer; font-size: 12px; text-align: left; max-width: 180px; }
.c2f-videos img { display: block; height: 90px; width: auto; }
video { width: 100%; max-height: 360px; background: #000; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 6px; border-bottom: 1px solid #8884; text-align: left; }
tbody tr { cursor: pointer; }
tbody tr:hover { background: rgba(100, 140, 220, 0.12); }
.c2f-like { border: 1px solid #8886; border-radius: 5px; background: none; padding: 1px 6px;
  cursor: pointer; font-size: 12px; white-space: nowrap; }
.c2f-like:hover { background: rgba(100, 140, 220, 0.2); }
"""
    + CURVES_CSS
)

MOMENT_COLUMNS = ["rank", "video", "start (s)", "end (s)", "score", "video score", "take", ""]

# js of the Export button: its inputs (raw result, picked ranks, ...) with the ranks of the ticked
# moments (space-separated; none ticked: all) in place of the second.
EXPORT_PICKED_JS = (
    "(raw, picked, ...rest) => [raw, [...document.querySelectorAll('#moments .c2f-take:checked')]"
    ".map((b) => b.value).join(' '), ...rest]"
)


def public_result(result: SearchResult) -> dict:
    """The result as the JSON a visitor sees: everything but server paths (each video's file)."""
    raw = result.to_dict()
    for v in raw["videos"]:
        v.pop("video_file", None)
    return raw


def status_line(result: SearchResult) -> str:
    timing = " · ".join(f"{k} {v:.0f} ms" for k, v in result.timings.items())
    return f"“{result.query}”: {len(result.videos)} video(s), {len(result.moments)} moment(s) in {timing}"


def moment_actions(rank: int, m: Moment, more_like: bool) -> str:
    """The row's last cells: a box to take it into an export, and "More like this" (when the mode
    searches by example)."""
    take = f'<td><input type="checkbox" class="c2f-take" value="{rank}" aria-label="take moment {rank}"></td>'
    if not more_like:
        return take + "<td></td>"
    like = html.escape(f"{m.video_id}:{m.start:.3f}-{m.end:.3f}")
    return take + f'<td><button type="button" class="c2f-like" data-like="{like}">More like this</button></td>'


def results_html(
    result: SearchResult, media: dict[str, tuple[Path, Path | None]], more_like: bool = True
) -> str:
    """One search's results; `media` maps each result video's id to (playable video, thumbnail);
    `more_like`: rows offer "More like this"."""
    esc = html.escape
    parts = [f'<p id="search-status">{esc(status_line(result))}</p>']
    parts += [f'<p class="c2f-note">{esc(note)}</p>' for note in result.notes]
    top = result.moments[0] if result.moments else None
    if top is not None:
        src = esc(media_url(media[top.video_id][0]))
        parts.append(
            f'<div id="player"><video controls preload="metadata" playsinline data-src="{src}" '
            f'src="{src}#t={top.start:.3f}"></video></div>'
        )
    best = {}  # video id -> its best moment's start
    for m in result.moments:
        best.setdefault(m.video_id, m.start)
    cards = []
    for rank, v in enumerate(result.videos, 1):
        video, thumb = media[v.video_id]
        img = f'<img src="{esc(media_url(thumb))}" alt="" loading="lazy">' if thumb is not None else ""
        cards.append(
            f'<button type="button" data-src="{esc(media_url(video))}" data-t="{best.get(v.video_id, 0.0):.3f}">'
            f"{img}{rank}. {esc(v.name)} ({v.video_score:.3f})</button>"
        )
    if cards:
        parts.append(f'<div class="c2f-videos">{"".join(cards)}</div>')
    head = "".join(f"<th>{c}</th>" for c in MOMENT_COLUMNS)
    rows = "".join(
        f'<tr data-src="{esc(media_url(media[m.video_id][0]))}" data-t="{m.start:.3f}" data-rank="{rank}"><td>{swatch_html(rank)}{rank}</td>'
        f"<td>{esc(m.name)}</td><td>{m.start:.2f}</td><td>{m.end:.2f}</td><td>{m.score:.4f}</td>"
        f"<td>{m.video_score:.4f}</td>{moment_actions(rank, m, more_like)}</tr>"
        for rank, m in enumerate(result.moments, 1)
    )
    parts.append(f'<table id="moments"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>')
    urls = {video_id: media_url(files[0]) for video_id, files in media.items()}
    parts.append(result_curves_html(result.videos, result.moments, urls))
    return "\n".join(parts)


__all__ = ["EXPORT_PICKED_JS", "MOMENT_COLUMNS", "RESULTS_CSS", "RESULTS_JS", "media_url", "results_html", "status_line"]

"""The curves of the design: for each top video, one panel (small multiples, captioned with the
video's rank and name) drawing its importance curve, its start and end probabilities, and every
predicted span as a band labelled by its rank and score (the ranks of the moments table), in its
rank's colour (`span_colour`: the swatch by the rank in the moments table, a few colours in turn,
so that neighbouring bands stay apart); the legend shows them all.

Plain SVG inside the results block: the browser draws it with the rest of the block, in one
render. Hovering a panel reads out the time and the scores under the pointer; clicking a band
seeks the player to the span's start, clicking elsewhere in a panel to the time under the pointer
(CURVES_JS, installed once per page, listens on the whole document).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence

import numpy as np

from c2f.search.types import Moment, VideoResult

WIDTH, HEIGHT = 900, 110  # the SVG's user units (it scales to the page's width)
LEFT, RIGHT, TOP, BOTTOM = 34, 8, 6, 20  # margins around the plotting area
SPAN_COLOURS = ["#fdae61", "#abd9e9", "#d9ef8b", "#f4a6c6", "#c2a5cf"]  # by rank, in turn
SERIES = (  # (class, colour, label, dash)
    ("c2f-imp", "#253494", "importance", ""),
    ("c2f-start", "#1a9850", "start probability (scaled to its peak)", "5 3"),
    ("c2f-end", "#d73027", "end probability (scaled to its peak)", "2 3"),
)

CURVES_CSS = """
.c2f-legend { display: flex; flex-wrap: wrap; gap: 14px; font-size: 12px; margin: 8px 0 2px; }
.c2f-legend span { display: inline-flex; align-items: center; gap: 4px; }
.c2f-legend svg { width: 26px; height: 10px; }
.c2f-swatch { display: inline-block; width: 10px; height: 10px; margin-right: 5px; vertical-align: -1px; }
.c2f-curve { margin: 4px 0 10px; position: relative; }
.c2f-curve figcaption { font-size: 13px; margin-bottom: 2px; }
.c2f-curve svg { width: 100%; height: auto; display: block; cursor: crosshair; }
.c2f-curve .c2f-span { cursor: pointer; }
.c2f-curve .c2f-span:hover rect { stroke: #333; stroke-width: 1.5; }
.c2f-curve text { font-size: 11px; fill: currentColor; }
.c2f-readout { font-size: 12px; min-height: 1.3em; color: #555; }
"""

# Hover read-out and click-to-seek for every curve panel of the page (installed once).
CURVES_JS = (
    """
if (!window.c2fCurves) {
  window.c2fCurves = true;
  const at = (svg, e) => {
    const fig = svg.closest('.c2f-curve');
    const box = svg.getBoundingClientRect();
    const x = (e.clientX - box.left) * __WIDTH__ / box.width;
    const dur = parseFloat(fig.dataset.duration);
    return { fig, x, t: Math.min(dur, Math.max(0, (x - __LEFT__) / __PLOT__ * dur)) };
  };
  document.addEventListener('mousemove', (e) => {
    const svg = e.target.closest && e.target.closest('.c2f-curve svg');
    if (!svg) return;
    const { fig, x, t } = at(svg, e);
    const c = fig._c2f || (fig._c2f = JSON.parse(fig.dataset.curve));
    let k = 0;
    while (k + 1 < c.t.length && Math.abs(c.t[k + 1] - t) <= Math.abs(c.t[k] - t)) k++;
    const cursor = svg.querySelector('.c2f-cursor');
    cursor.setAttribute('x1', x); cursor.setAttribute('x2', x); cursor.style.display = '';
    fig.querySelector('.c2f-readout').textContent =
      `${t.toFixed(2)} s · importance ${c.i[k].toFixed(3)} · start ${c.s[k].toFixed(4)} · end ${c.e[k].toFixed(4)}`;
  });
  document.addEventListener('click', (e) => {
    const svg = e.target.closest && e.target.closest('.c2f-curve svg');
    if (!svg || e.target.closest('[data-t]') || !window.c2fSeek) return;
    const { fig, t } = at(svg, e);
    if (fig.dataset.src) window.c2fSeek(fig.dataset.src, t);
  });
}
""".replace("__WIDTH__", str(WIDTH))
    .replace("__LEFT__", str(LEFT))
    .replace("__PLOT__", str(WIDTH - LEFT - RIGHT))
)


def _scaled(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, float)
    peak = float(values.max()) if len(values) else 0.0
    return values / peak if peak > 0 else values


def span_colour(rank: int) -> str:
    """The colour of the moment ranked `rank` (from 1): its band in the curves, its swatch in the
    moments table."""
    return SPAN_COLOURS[(rank - 1) % len(SPAN_COLOURS)]


def swatch_html(rank: int) -> str:
    """A small square in moment `rank`'s colour (the moments table's rank cell)."""
    return f'<svg class="c2f-swatch" viewBox="0 0 10 10"><rect width="10" height="10" fill="{span_colour(rank)}"/></svg>'


def legend_html(with_truth: bool = False, in_table: bool = True) -> str:
    """What the panels draw. `in_table`: the results view, whose moments table shows each rank's
    colour and whose bands seek the player; else the error analysis's one panel."""
    items = [
        f'<span><svg viewBox="0 0 26 10"><line x1="0" y1="5" x2="26" y2="5" stroke="{colour}" '
        f'stroke-width="2" stroke-dasharray="{dash}"/></svg>{label}</span>'
        for _, colour, label, dash in SERIES
    ]
    width = 26 / len(SPAN_COLOURS)
    stripes = "".join(
        f'<rect x="{k * width:.2f}" width="{width:.2f}" height="10" fill="{c}"/>' for k, c in enumerate(SPAN_COLOURS)
    )
    which = "its rank's colour, as in the moments table; click to play" if in_table else "a colour per rank"
    items.append(f'<span><svg viewBox="0 0 26 10">{stripes}</svg>predicted span, labelled #rank · score ({which})</span>')
    if with_truth:
        items.append(
            '<span><svg viewBox="0 0 26 10"><rect width="26" height="10" fill="none" stroke="#d7301f" '
            'stroke-width="2"/></svg>ground truth</span>'
        )
    return f'<div class="c2f-legend">{"".join(items)}</div>'


def _ticks(duration: float) -> list[float]:
    """About six round times from 0 to `duration`."""
    if duration <= 0:
        return [0.0]
    raw = duration / 6
    step = min(
        (s for s in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800) if s >= raw), default=3600
    )
    return [float(t) for t in np.arange(0.0, duration + 1e-9, step)]


def curve_panel(
    video: VideoResult,
    spans: Sequence[tuple[int, Moment]],
    caption: str,
    src: str | None = None,
    truth: tuple[float, float] | None = None,
) -> str:
    """One video's panel. `spans`: (rank, moment) of its predicted spans; `src`: the URL the
    player plays for this video (None: the panel does not seek); `truth`: a ground-truth span."""
    esc = html.escape
    duration = max(video.duration, 1e-3)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + plot_w * min(max(t, 0.0), duration) / duration

    def y(v: float) -> float:
        return TOP + plot_h * (1.0 - min(max(v, 0.0), 1.0))

    centres = np.asarray(video.clip_times, float).mean(axis=1) if len(video.clip_times) else np.zeros(0)
    parts = [
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#8886"/>',
    ]
    for t in _ticks(duration):
        parts.append(
            f'<line x1="{x(t):.1f}" y1="{TOP + plot_h}" x2="{x(t):.1f}" y2="{TOP + plot_h + 3}" stroke="#888"/>'
            f'<text x="{x(t):.1f}" y="{HEIGHT - 5}" text-anchor="middle">{t:g}s</text>'
        )
    for v in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{LEFT - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    seek = f' data-src="{esc(src)}"' if src else ""
    for k, (rank, m) in enumerate(spans):  # k: the span's place in this panel, staggering labels
        x0, x1 = x(m.start), x(m.end)
        data = f' data-rank="{rank}" data-start="{m.start:.3f}" data-end="{m.end:.3f}" data-score="{m.score:.4f}"'
        if src:
            data += f' data-t="{m.start:.3f}"'
        parts.append(
            f'<g class="c2f-span"{seek}{data}><rect x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 1.5):.1f}" '
            f'height="{plot_h}" fill="{span_colour(rank)}" fill-opacity="0.55"/>'
            f'<text x="{x0 + 3:.1f}" y="{TOP + 12 + 12 * (k % 4)}">#{rank} · {m.score:.3f}</text>'
            f"<title>moment #{rank}: {m.start:.2f}–{m.end:.2f} s, score {m.score:.4f}</title></g>"
        )
    if truth is not None:
        parts.append(
            f'<rect class="c2f-truth" x="{x(truth[0]):.1f}" y="{TOP + 1}" width="{max(x(truth[1]) - x(truth[0]), 1.5):.1f}" '
            f'height="{plot_h - 2}" fill="none" stroke="#d7301f" stroke-width="2"><title>ground truth: '
            f"{truth[0]:.2f}–{truth[1]:.2f} s</title></rect>"
        )
    curves = (video.importance, _scaled(video.start_prob), _scaled(video.end_prob))
    for (cls, colour, _, dash), values in zip(SERIES, curves, strict=True):
        points = " ".join(
            f"{x(t):.1f},{y(v):.1f}" for t, v in zip(centres, np.asarray(values, float), strict=True)
        )
        parts.append(
            f'<polyline class="{cls}" points="{points}" fill="none" stroke="{colour}" stroke-width="'
            f'{2 if cls == "c2f-imp" else 1.3}" stroke-dasharray="{dash}" pointer-events="none"/>'
        )
    parts.append(
        f'<line class="c2f-cursor" x1="0" x2="0" y1="{TOP}" y2="{TOP + plot_h}" stroke="#555" '
        'stroke-width="1" pointer-events="none" style="display:none"/>'
    )
    curve = {
        "t": np.round(centres, 3).tolist(),
        "i": np.round(np.asarray(video.importance, float), 4).tolist(),
        "s": np.round(np.asarray(video.start_prob, float), 4).tolist(),
        "e": np.round(np.asarray(video.end_prob, float), 4).tolist(),
    }
    return (
        f'<figure class="c2f-curve" data-video="{esc(video.video_id)}" data-duration="{duration:.3f}"{seek} '
        f"data-curve='{esc(json.dumps(curve, separators=(',', ':')))}'>"
        f"<figcaption>{caption}</figcaption>"
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img">{"".join(parts)}</svg>'
        '<div class="c2f-readout"></div></figure>'
    )


def result_curves_html(
    videos: Sequence[VideoResult], moments: Sequence[Moment], urls: dict[str, str], max_videos: int = 10
) -> str:
    """The legend, then one panel per top video (best first) with the spans of `moments` (ranked
    as in the moments table) that fall in it."""
    esc = html.escape
    panels = []
    for rank, v in enumerate(videos[:max_videos], 1):
        spans = [(r, m) for r, m in enumerate(moments, 1) if m.video_id == v.video_id]
        caption = f"<b>{rank}. {esc(v.name)}</b> · video score {v.video_score:.3f}"
        panels.append(curve_panel(v, spans, caption, urls.get(v.video_id)))
    if not panels:
        return ""
    return f'<div id="curves">{legend_html()}{"".join(panels)}</div>'


def query_curves_html(video: VideoResult, truth: tuple[float, float], query: str) -> str:
    """The error-analysis view of one query: the right video's curves, its predicted spans and the
    ground truth."""
    caption = f"<b>{html.escape(video.name)}</b> for “{html.escape(query)}”"
    spans = list(enumerate(video.moments, 1))
    return (
        f'<div id="query-curves">{legend_html(True, in_table=False)}'
        f"{curve_panel(video, spans, caption, None, truth)}</div>"
    )


__all__ = [
    "CURVES_CSS",
    "CURVES_JS",
    "curve_panel",
    "legend_html",
    "query_curves_html",
    "result_curves_html",
    "span_colour",
    "swatch_html",
]

"""Curves of search results: a long table for Gradio's interactive line plot (search tab: hover
gives time and score, drawn in the browser), and Matplotlib figures with predicted spans shaded and
the ground truth hatched (error-analysis tab)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display: figures are rendered for the browser
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from c2f.search.types import VideoResult

SPAN_COLOURS = ["#2b8cbe", "#7bccc4", "#bae4bc", "#f0f9e8", "#fdd49e"]


def draw_video_curves(
    ax, video: VideoResult, gt: tuple[float, float] | None = None, title: str | None = None
) -> None:
    centres = video.clip_times.mean(axis=1)
    for rank, m in enumerate(video.moments):
        ax.axvspan(
            m.start,
            m.end,
            color=SPAN_COLOURS[rank % len(SPAN_COLOURS)],
            alpha=0.35,
            label=f"moment {rank + 1}" if rank < 3 else None,
        )
    if gt is not None:
        ax.axvspan(
            gt[0], gt[1], fill=False, hatch="//", edgecolor="#d7301f", linewidth=1.5, label="ground truth"
        )
    ax.plot(centres, video.importance, color="#253494", linewidth=2, label="importance")
    for prob, color, name in ((video.start_prob, "#41ab5d", "start"), (video.end_prob, "#ef6548", "end")):
        ax.step(
            centres,
            prob / max(prob.max(), 1e-9),
            where="mid",
            color=color,
            linewidth=1,
            alpha=0.8,
            label=f"{name} prob. (scaled)",
        )
    ax.set_xlim(0, max(video.duration, 1e-3))
    ax.set_ylim(-0.02, 1.05)
    ax.set_ylabel("score")
    ax.set_title(title or f"{video.name}  (video score {video.video_score:.3f})", fontsize=9, loc="left")
    ax.grid(alpha=0.2)


def results_figure(
    videos: list[VideoResult], gts: dict[str, tuple[float, float]] | None = None, max_rows: int = 10
) -> Figure:
    """One row per video (best first), shared legend; x axis in seconds."""
    rows = max(1, min(len(videos), max_rows))
    fig, axes = plt.subplots(rows, 1, figsize=(9, 1.9 * rows + 0.6), squeeze=False)
    for ax, video in zip(axes[:, 0], videos[:rows], strict=False):
        draw_video_curves(ax, video, (gts or {}).get(video.video_id))
    if not videos:
        axes[0, 0].text(0.5, 0.5, "no result", ha="center", va="center")
    axes[-1, 0].set_xlabel("time (s)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=7, ncol=3)
    fig.tight_layout(rect=(0, 0, 1, 0.97 if handles else 1))
    plt.close(fig)  # the caller owns it; keep pyplot's registry empty across sessions
    return fig


def curves_table(videos: list[VideoResult], max_videos: int = 5) -> pd.DataFrame:
    """One row per (video, clip): clip centre time, importance, which video; best video first."""
    parts = []
    for rank, video in enumerate(videos[:max_videos], 1):
        centres = video.clip_times.mean(axis=1)  # (N,)
        parts.append(
            pd.DataFrame(
                {
                    "time (s)": centres.round(2),
                    "importance": np.asarray(video.importance, float).round(4),
                    "video": f"{rank}. {video.name}",
                }
            )
        )
    if not parts:
        return pd.DataFrame({"time (s)": [], "importance": [], "video": []})
    return pd.concat(parts, ignore_index=True)


def figure_to_png(fig: Figure, path) -> None:
    fig.savefig(path, dpi=80)


__all__ = ["curves_table", "draw_video_curves", "figure_to_png", "results_figure"]

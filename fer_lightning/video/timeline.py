"""Emotion over time: each track's smoothed class probabilities gathered frame by frame, one figure per
track."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fer_lightning.utils.io import save_figure
from fer_lightning.video.pipeline import FrameResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class Timelines:
    """Per track id: the times it was seen and its probabilities there, in frame order."""

    def __init__(self) -> None:
        self.times: dict[int, list[float]] = {}
        self.probabilities: dict[int, list[list[float]]] = {}

    def add(self, result: FrameResult) -> None:
        for face in result.faces:
            self.times.setdefault(face.track_id, []).append(result.time)
            self.probabilities.setdefault(face.track_id, []).append(list(face.probabilities.values()))

    def __len__(self) -> int:
        return len(self.times)


def timeline_figure(
    times: Sequence[float],
    probabilities: np.ndarray | Sequence[Sequence[float]],
    classes: Sequence[str],
    title: str,
) -> Figure:
    """One line per class over time (seconds), probabilities 0..1. Built as a bare Figure (Agg rendering,
    no pyplot state), like :mod:`fer_lightning.plots`."""
    # imported here: matplotlib takes ~1 s to import, which scripts/video.py should not spend before it has
    # checked its input
    from matplotlib.figure import Figure

    probabilities = np.asarray(probabilities, dtype=float)
    fig = Figure(figsize=(9, 3.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    # markers when there are few points, so a face seen on a handful of frames still shows up
    style = {"marker": "o", "markersize": 3} if len(times) < 30 else {}
    for i, name in enumerate(classes):
        ax.plot(times, probabilities[:, i], label=name, linewidth=1.4, **style)
    ax.set_ylim(0, 1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability (smoothed)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return fig


def save_timelines(timelines: Timelines, classes: Sequence[str], out_dir: str | Path) -> list[Path]:
    """``out_dir/track_<id>.png`` for every track, each written atomically."""
    paths = []
    for track_id, times in sorted(timelines.times.items()):
        first, last = times[0], times[-1]
        title = f"face track {track_id}: {len(times)} frame(s), {first:.2f}-{last:.2f} s"
        fig = timeline_figure(times, timelines.probabilities[track_id], classes, title)
        paths.append(save_figure(fig, Path(out_dir) / f"track_{track_id}.png"))
    return paths

"""``tradeoff.png``: accuracy against size and speed, for summaries whose runs differ in parameter count.

A sweep over learning rates has one network size and gets no such plot; a comparison of backbones gets one
point per run: PrivateTest accuracy (the reported figure, never used to select) against parameters on a log
axis, each point labelled with its run and its training throughput.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fer_lightning.experiments.results import shared_overrides
from fer_lightning.utils.io import save_figure

TRADEOFF_FILE = "tradeoff.png"


def plottable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Completed runs with a parameter count and a test accuracy, when at least two sizes are among them."""
    done = [
        r
        for r in rows
        if r.get("status") == "completed" and r.get("params") and r.get("test_acc") is not None
    ]
    return done if len({r["params"] for r in done}) >= 2 else []


def labels(rows: list[dict[str, Any]]) -> list[str]:
    """Each run by the overrides the others do not share (a timestamped run folder says nothing about
    what it trained), else by its folder name; one override per line, long ones cut."""

    def cut(text: str) -> str:
        return text if len(text) <= 40 else text[:37] + "…"

    shared = shared_overrides(rows)
    own = [[o for o in r.get("overrides") or [] if o not in shared] for r in rows]
    return ["\n".join(map(cut, o)) if o else cut(r["run"]) for r, o in zip(rows, own)]


def plot_tradeoff(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """The scatter for :func:`plottable` rows; ``None`` (and no file) when there are none."""
    points = plottable(rows)
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for r, label in zip(points, labels(points)):
        acc = 100 * r["test_acc"]
        ax.scatter(r["params"], acc, s=40, color="#4C72B0", zorder=3)
        speed = r.get("train_img_per_s")
        if speed:
            label += f"\n{speed:.0f} img/s training"
        ax.annotate(label, (r["params"], acc), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("test/acc % (PrivateTest)")
    ax.grid(True, which="both", alpha=0.3)
    ax.margins(x=0.4, y=0.15)
    ax.set_title(f"{len(points)} run(s): accuracy against size; training img/s under each name")
    fig.tight_layout()
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)

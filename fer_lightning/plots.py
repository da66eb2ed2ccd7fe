"""Evaluation figures: the confusion matrix and a gallery of the most confident mistakes.

Figures are built as bare :class:`~matplotlib.figure.Figure` objects, not through pyplot: they need no GUI
backend (``savefig`` renders with Agg), pyplot's figure registry never holds on to them (a training callback
makes one per epoch), and a notebook's inline backend is left alone — ``display(fig)`` shows them there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure


def confusion_matrix_figure(
    counts: np.ndarray | Sequence[Sequence[int]], classes: Sequence[str], title: str = "confusion matrix"
) -> Figure:
    """Rows = true class, columns = predicted; colour = row-normalised rate (recall on the diagonal).

    Each cell shows its rate and its count, so rare classes (disgust: 55 faces) read as well as frequent ones.
    """
    counts = np.asarray(counts, dtype=np.int64)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    n = len(classes)
    fig = Figure(figsize=(1.0 * n + 2.0, 1.0 * n + 1.2), dpi=100, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                f"{rates[i, j]:.0%}\n{counts[i, j]}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if rates[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), [f"{c} ({counts[i].sum()})" for i, c in enumerate(classes)])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (faces)")
    ax.set_title(f"{title}\naccuracy {np.trace(counts) / max(counts.sum(), 1):.1%} on {counts.sum()} faces")
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of the true class")
    return fig


def mistakes_gallery(
    images: np.ndarray,
    labels: np.ndarray,
    probs: np.ndarray,
    picks: dict[int, np.ndarray],
    classes: Sequence[str],
) -> Figure:
    """One row per true class: its most confident mistakes (from :func:`most_confident_mistakes`), captioned
    'predicted p%'. ``images`` (N, 48, 48) or (N, 1, 48, 48) uint8."""
    images = np.asarray(images).reshape(len(images), *np.asarray(images).shape[-2:])
    columns = max([len(v) for v in picks.values()] + [1])
    fig = Figure(figsize=(1.3 * columns + 0.8, 1.45 * len(classes)), dpi=100, layout="constrained")
    axes = fig.subplots(len(classes), columns, squeeze=False)
    for row, name in enumerate(classes):
        chosen = picks.get(row, np.array([], dtype=np.int64))
        for col in range(columns):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col == 0:
                ax.set_ylabel(f"{name}\n({len(chosen)} shown)", fontsize=8)
            if col >= len(chosen):
                continue
            index = int(chosen[col])
            predicted = int(probs[index].argmax())
            ax.imshow(images[index], cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"{classes[predicted]} {probs[index, predicted]:.0%}", fontsize=7, color="firebrick")
    fig.suptitle(
        "most confident mistakes per true class (caption: predicted class and its probability)", fontsize=9
    )
    return fig

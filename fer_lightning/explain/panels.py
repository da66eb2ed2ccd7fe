"""The notebook's review panel, one row per face: crop | label | probability | guided backprop | Grad-CAM
overlay | guided Grad-CAM. Built as a bare matplotlib ``Figure`` (Agg rendering, no pyplot state;
``display(fig)`` in a notebook). Its pixel size is fixed — ``CELL_PX`` per cell — so grids of any length
compare side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure
from pytorch_grad_cam.utils.image import deprocess_image, show_cam_on_image

from fer_lightning.explain.gradcam import Explanation
from fer_lightning.utils.io import save_figure

COLUMNS = ("face", "label", "probability", "guided backprop", "Grad-CAM", "guided Grad-CAM")
DPI = 100
CELL_PX = 160  # one cell of the grid; a 48x48 face is shown at ~3x


def panel_size(rows: int) -> tuple[int, int]:
    """(height, width) in pixels of a saved panel grid with ``rows`` faces."""
    return rows * CELL_PX, len(COLUMNS) * CELL_PX


def cam_overlay(face: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """RGB uint8: the gray face under the Grad-CAM heat map (jet; red = most important for the class)."""
    rgb = cv2.cvtColor(face, cv2.COLOR_GRAY2RGB).astype(np.float32) / 255.0
    return show_cam_on_image(rgb, cam, use_rgb=True, image_weight=0.55)


def gradient_image(gradient: np.ndarray) -> np.ndarray:
    """A signed input-gradient map as a gray uint8 image (pytorch-grad-cam's contrast stretch around grey)."""
    return deprocess_image(gradient)


def _blank(ax, frame: bool = True) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(frame)


def _label_cell(
    ax, name: str, probs: np.ndarray, target: int, classes: Sequence[str], truth: int | None
) -> None:
    _blank(ax, frame=False)
    predicted = int(probs.argmax())
    lines = [(classes[predicted], 13, "bold", "black"), (f"{probs[predicted]:.0%}", 11, "normal", "black")]
    if truth is not None:
        ok = truth == predicted
        lines.append((f"true: {classes[truth]}", 9, "normal", "darkgreen" if ok else "firebrick"))
    if target != predicted:
        lines.append((f"CAM for {classes[target]}", 8, "normal", "dimgray"))
    for i, (text, size, weight, color) in enumerate(lines):
        ax.text(
            0.5,
            0.78 - 0.2 * i,
            text,
            ha="center",
            va="center",
            fontsize=size,
            weight=weight,
            color=color,
            transform=ax.transAxes,
        )
    ax.text(
        0.5,
        0.04,
        name,
        ha="center",
        va="bottom",
        fontsize=6,
        color="dimgray",
        transform=ax.transAxes,
        wrap=True,
    )


def _probability_cell(ax, probs: np.ndarray, classes: Sequence[str], truth: int | None) -> None:
    colors = ["tab:blue"] * len(classes)
    colors[int(probs.argmax())] = "tab:orange"
    if truth is not None:
        colors[truth] = "tab:green" if truth == int(probs.argmax()) else "tab:red"
    ax.barh(range(len(classes)), probs, color=colors, alpha=0.8)
    for i, name in enumerate(classes):  # names inside the plot: tick labels would spill into the next cell
        ax.text(0.02, i, f"{name} {probs[i]:.0%}", va="center", fontsize=6)
    ax.set_yticks([])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xticks([0, 0.5, 1], ["0", ".5", "1"], fontsize=6)
    ax.tick_params(length=2, pad=1)


def panel_figure(
    explanation: Explanation,
    classes: Sequence[str],
    names: Sequence[str] | None = None,
    true_labels: Sequence[int | None] | None = None,
) -> Figure:
    """The panel grid for every face in ``explanation`` (``names`` caption the rows; ``true_labels`` colour
    the probability bars: green = correct, red = the true class when the prediction is wrong)."""
    rows = max(len(explanation), 1)
    height, width = panel_size(rows)
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    fig.subplots_adjust(
        left=0.06, right=0.99, top=1 - 0.16 / rows, bottom=0.02 / rows, wspace=0.25, hspace=0.3
    )
    axes = fig.subplots(rows, len(COLUMNS), squeeze=False)
    for col, title in enumerate(COLUMNS):
        axes[0, col].set_title(title, fontsize=9)
    for i in range(len(explanation)):
        face, probs = explanation.faces[i], explanation.probs[i]
        truth = None if true_labels is None else true_labels[i]
        row = axes[i]
        row[0].imshow(face, cmap="gray", vmin=0, vmax=255)
        _label_cell(
            row[1], names[i] if names else f"face {i}", probs, int(explanation.targets[i]), classes, truth
        )
        _probability_cell(row[2], probs, classes, truth)
        row[3].imshow(gradient_image(explanation.guided[i]), cmap="gray", vmin=0, vmax=255)
        row[4].imshow(cam_overlay(face, explanation.cam[i]))
        row[5].imshow(gradient_image(explanation.guided_cam[i]), cmap="gray", vmin=0, vmax=255)
        for col in (0, 3, 4, 5):
            _blank(row[col])
    if len(explanation) == 0:
        for ax in axes[0]:
            _blank(ax)
    return fig


def save_panels(
    explanation: Explanation,
    classes: Sequence[str],
    out_dir: str | Path,
    names: Sequence[str] | None = None,
    true_labels: Sequence[int | None] | None = None,
    rows_per_page: int = 16,
    stem: str = "gradcam_panels",
) -> list[Path]:
    """PNG pages of at most ``rows_per_page`` faces: ``<stem>_000.png``, ... (written atomically)."""
    paths = []
    for page, start in enumerate(range(0, max(len(explanation), 1), rows_per_page)):
        part = slice(start, start + rows_per_page)
        sub = Explanation(*(getattr(explanation, f)[part] for f in Explanation.__dataclass_fields__))
        fig = panel_figure(
            sub,
            classes,
            None if names is None else names[part],
            None if true_labels is None else true_labels[part],
        )
        paths.append(save_figure(fig, Path(out_dir) / f"{stem}_{page:03d}.png", dpi=DPI))
    return paths

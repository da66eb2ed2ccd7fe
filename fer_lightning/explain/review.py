"""Grad-CAM review of photos: detect every face, explain it, and score it where the photos carry labels.

The library half of ``scripts/gradcam.py`` (``tasks/gradcam.py`` reads the config and writes the pages); the
review notebook calls these functions directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from fer_lightning.explain.gradcam import Explanation, GradCAMExplainer
from fer_lightning.faces.walk import UNREADABLE, Inputs, list_inputs
from fer_lightning.images import ImageReadError
from fer_lightning.predict import Predictor

NO_FACE = "no face found"


@dataclass(frozen=True)
class PhotoFaces:
    """The faces found in a set of photos, ready for :meth:`GradCAMExplainer.explain`."""

    crops: np.ndarray  # (N, 48, 48) uint8
    names: list[str]  # "<photo>" or "<photo> #k" for the k-th face of a photo with several
    true_labels: list[int | None]
    skipped: list[tuple[str, str]]  # (photo, reason): unreadable, skipped by the folder walk, or no face


def collect_faces(
    predictor: Predictor,
    inputs: str | Path | Inputs,
    max_faces: int | None = None,
    label_rule: Callable[[PurePosixPath], tuple[int | None, str]] | None = None,
) -> PhotoFaces:
    """Every detected face under ``inputs`` (photos in sorted order, largest face first), up to ``max_faces``.
    ``label_rule`` (e.g. ``conf/labels/jaffe.yaml``'s) gives true labels from the photos' relative paths."""
    listed = inputs if isinstance(inputs, Inputs) else list_inputs(inputs)
    crops, names, truths, skipped = [], [], [], list(listed.failed)
    for path, name in listed.files:
        if max_faces is not None and len(crops) >= max_faces:
            break
        try:
            _, faces = predictor.detect(*predictor.load_image(path))
        except ImageReadError as e:
            skipped.append((name, f"{UNREADABLE}: {e.reason}"))
            continue
        if not faces:
            skipped.append((name, NO_FACE))
        truth = label_rule(PurePosixPath(name))[0] if label_rule is not None else None
        for k, crop in enumerate(faces[: None if max_faces is None else max_faces - len(crops)]):
            crops.append(crop)
            names.append(name if len(faces) == 1 else f"{name} #{k}")
            truths.append(truth)
    stacked = np.stack(crops) if crops else np.zeros((0, 48, 48), np.uint8)
    return PhotoFaces(stacked, names, truths, skipped)


def explain_photos(
    predictor: Predictor,
    inputs: str | Path | Inputs,
    target_layer: str | None = None,
    max_faces: int | None = None,
    label_rule=None,
) -> tuple[Explanation, PhotoFaces]:
    """Detect and explain: (explanation of every face, what was found and skipped)."""
    found = collect_faces(predictor, inputs, max_faces, label_rule)
    explainer = GradCAMExplainer(predictor.net, target_layer, predictor.classes)
    return explainer.explain(found.crops), found


def accuracy_if_labelled(explanation: Explanation, true_labels: Sequence[int | None]) -> float | None:
    """Share of faces whose prediction equals their known label (``None`` when no face has a label)."""
    known = [(int(p), t) for p, t in zip(explanation.predictions(), true_labels) if t is not None]
    return sum(p == t for p, t in known) / len(known) if known else None

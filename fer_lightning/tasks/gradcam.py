"""Grad-CAM review of photos: detect faces, explain each one, save the panel grid (``scripts/gradcam.py``).

The notebook ``notebooks/gradcam_review.ipynb`` calls the same functions, so what it shows is what the script saves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from omegaconf import DictConfig

from fer_lightning.images import ImageReadError
from fer_lightning.faces.pipeline import instantiate_setting
from fer_lightning.errors import InputError
from fer_lightning.explain.gradcam import Explanation, GradCAMExplainer
from fer_lightning.explain.panels import save_panels
from fer_lightning.predict import Predictor
from fer_lightning.tasks.predict import UNREADABLE, Inputs, list_inputs

log = logging.getLogger(__name__)

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


def review_photos(cfg: DictConfig) -> list[Path]:
    """``scripts/gradcam.py``: panel PNGs for the faces in ``cfg.inputs``, saved in the run dir.

    Photos that cannot be read or hold no face are logged and counted; :class:`InputError` when not one face
    is left to explain."""
    inputs = list_inputs(cfg.inputs)  # a wrong path or an empty folder fails before the model is loaded
    detector = instantiate_setting(cfg, "detector")
    label_rule = instantiate_setting(cfg, "labels") if cfg.get("labels") else None
    predictor = Predictor.from_checkpoint(cfg.get("ckpt_path"), detector, device=cfg.device)
    explanation, found = explain_photos(predictor, inputs, cfg.get("target_layer"), cfg.get("max_faces"),
                                        label_rule)
    for name, reason in found.skipped:
        log.warning("%s: %s", name, reason)
    no_face = sum(reason == NO_FACE for _, reason in found.skipped)
    if len(explanation) == 0:
        raise InputError(f"inputs={cfg.inputs}: no face to explain ({len(found.skipped) - no_face} file(s) "
                         f"could not be read, {no_face} photo(s) without a face; see the warnings above)")
    if found.skipped:
        log.warning("skipped %d file(s): %d could not be read, %d without a face",
                    len(found.skipped), len(found.skipped) - no_face, no_face)
    truths = found.true_labels if label_rule is not None else None
    pages = save_panels(
        explanation, predictor.classes, cfg.paths.output_dir, found.names, truths, cfg.rows_per_page
    )
    log.info(
        "Grad-CAM at %s for %d face(s): %s",
        cfg.get("target_layer") or "the default layer",
        len(explanation),
        ", ".join(str(p) for p in pages),
    )
    return pages


def accuracy_if_labelled(explanation: Explanation, true_labels: Sequence[int | None]) -> float | None:
    """Share of faces whose prediction equals their known label (``None`` when no face has a label)."""
    known = [(int(p), t) for p, t in zip(explanation.predictions(), true_labels) if t is not None]
    return sum(p == t for p, t in known) / len(known) if known else None

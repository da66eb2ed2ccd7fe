"""Grad-CAM review of photos: detect faces, explain each one, save the panel grid (``scripts/gradcam.py``).

Usage: ``python scripts/gradcam.py inputs=<photo or folder> [ckpt_path=...] [labels=jaffe]`` (settings:
``conf/gradcam.yaml``).

Detection and explanation live in ``explain/review.py``, which the review notebook calls too, so what it shows
is what the script saves.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from fer_lightning.tasks.predictor import predictor_from_config
from fer_lightning.errors import InputError
from fer_lightning.explain.panels import save_panels
from fer_lightning.explain.review import NO_FACE, explain_photos
from fer_lightning.faces.walk import list_inputs
from fer_lightning.utils.instantiate import instantiate_setting

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> list[Path]:
    """``scripts/gradcam.py``: panel PNGs for the faces in ``cfg.inputs``, saved in the run dir.

    Photos that cannot be read or hold no face are logged and counted; :class:`InputError` when not one face
    is left to explain."""
    inputs = list_inputs(cfg.inputs)  # a wrong path or an empty folder fails before the model is loaded
    label_rule = instantiate_setting(cfg, "labels") if cfg.get("labels") else None
    predictor = predictor_from_config(cfg)
    explanation, found = explain_photos(
        predictor, inputs, cfg.get("target_layer"), cfg.get("max_faces"), label_rule
    )
    for name, reason in found.skipped:
        log.warning("%s: %s", name, reason)
    no_face = sum(reason == NO_FACE for _, reason in found.skipped)
    if len(explanation) == 0:
        raise InputError(
            f"inputs={cfg.inputs}: no face to explain ({len(found.skipped) - no_face} file(s) "
            f"could not be read, {no_face} photo(s) without a face; see the warnings above)"
        )
    if found.skipped:
        log.warning(
            "skipped %d file(s): %d could not be read, %d without a face",
            len(found.skipped),
            len(found.skipped) - no_face,
            no_face,
        )
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

"""One photo → every face's box, label, probabilities and Grad-CAM overlay: what the demo page shows.

Detection and classification are :class:`~fer_lightning.predict.Predictor`'s, the maps are
:class:`~fer_lightning.explain.gradcam.GradCAMExplainer`'s for the class the predictor chose, and the overlay
is the review panels' :func:`~fer_lightning.explain.panels.cam_overlay`, so the page agrees with
``scripts/predict.py`` and ``scripts/gradcam.py`` face for face.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer_lightning.explain.gradcam import GradCAMExplainer
from fer_lightning.explain.panels import cam_overlay
from fer_lightning.faces.detectors import Box
from fer_lightning.images import to_rgb
from fer_lightning.predict import FacePrediction, Predictor

#: Side in pixels of each half of a face's "crop | Grad-CAM" strip: 4x the 48x48 crop, big enough to see
#: which features the map covers without the browser blurring a tiny image.
FACE_VIEW_PX = 192


# eq=False: identity hashing, so that gradio, which hashes the page's state to see what changed, can hash it
# (a generated hash would fail on the probabilities dict)
@dataclass(frozen=True, eq=False)
class FaceResult:
    """One face as the page shows it: ``number`` counts from 1 (largest face first)."""

    number: int
    box: Box
    label: str
    probabilities: dict[str, float]
    view: np.ndarray = field(repr=False)  # RGB uint8: the 48x48 crop | its Grad-CAM overlay

    @property
    def caption(self) -> str:
        return f"face {self.number}: {self.label} {self.probabilities[self.label]:.0%}"


@dataclass(frozen=True)
class PhotoAnalysis:
    """The photo in RGB and its faces (``[]`` when the detector found none)."""

    image: np.ndarray = field(repr=False, compare=False)
    faces: list[FaceResult]

    def boxes(self) -> list[tuple[tuple[int, int, int, int], str]]:
        """``((x1, y1, x2, y2), caption)`` per face, clipped to the photo (a box may reach past its edge)."""
        height, width = self.image.shape[:2]
        out = []
        for face in self.faces:
            b = face.box.clipped(width, height)
            out.append(((b.x, b.y, b.x + b.w, b.y + b.h), face.caption))
        return out


def face_view(crop: np.ndarray, cam: np.ndarray, size: int = FACE_VIEW_PX) -> np.ndarray:
    """RGB uint8 ``size`` x ``2 * size``: the gray crop the network saw beside its Grad-CAM overlay."""
    halves = [cv2.cvtColor(crop, cv2.COLOR_GRAY2RGB), cam_overlay(crop, cam)]
    return np.hstack([cv2.resize(h, (size, size), interpolation=cv2.INTER_CUBIC) for h in halves])


class FaceAnalyser:
    """``analyse(photo)`` with one predictor and one Grad-CAM explainer (its own copy of the network).

    Not thread-safe: Grad-CAM hooks the explainer's network during a call, so calls must not overlap (the page
    runs one at a time)."""

    def __init__(self, predictor: Predictor, target_layer: str | None = None) -> None:
        self.predictor = predictor
        self.explainer = GradCAMExplainer(predictor.net, target_layer, predictor.classes, predictor.device)

    @property
    def detector_name(self) -> str:
        return self.predictor.detector.name

    def analyse(self, photo: np.ndarray | str | Path, color: str = "rgb") -> PhotoAnalysis:
        """Every face in ``photo`` (a path, or an array in ``color``), largest first.

        Raises :class:`~fer_lightning.errors.ImageReadError` for a file that cannot be decoded and
        :class:`~fer_lightning.errors.InputError` for an unusable array, as :meth:`Predictor.predict` does."""
        image, bgr = self.predictor.load_image(photo, color)
        faces = self.predictor.predict(image, "bgr" if bgr else "rgb")
        return PhotoAnalysis(to_rgb(image, bgr), self._explained(faces))

    def _explained(self, faces: list[FacePrediction]) -> list[FaceResult]:
        if not faces:
            return []
        classes = self.predictor.classes
        # the map explains the predictor's label (not the explainer's own argmax of its float32 copy)
        targets = [classes.index(f.label) for f in faces]
        explanation = self.explainer.explain(np.stack([f.crop for f in faces]), targets)
        return [
            FaceResult(f.index + 1, f.box, f.label, f.probabilities, face_view(f.crop, explanation.cam[i]))
            for i, f in enumerate(faces)
        ]

"""No face left behind: :class:`FaceFinder` wraps a detector for photos that already are face crops.

A detector scans for a face *inside* a scene: dlib's HOG window needs some forehead, cheek and background
around the face, and no detector looks below ~40 px. A tight, small crop (what people cut from a group photo,
what FER2013 itself is) offers neither, so it comes back empty. On a miss the finder

1. pads the photo with its own edge pixels and enlarges it (room for the detector's window, a face above its
   smallest size), then asks the main detector and a second one (OpenCV's Haar cascade by default) again;
2. when still nothing is found and the photo *looks like one face crop* — near square, small, not flat —
   takes the whole photo as the face, marked ``source="fallback"`` (the ``face_source`` column of
   ``predictions.csv``), so a label that rests on this assumption is never mistaken for a detection.

A scene-sized photo without a face, a long strip or a flat image stays "no face".
``benchmarks/bench_photo_sets.py`` counts faces found on labelled crop sets and wrong fallbacks on a no-face
set (figures in docs/results.md).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from fer_lightning.errors import ConfigError
from fer_lightning.faces.detectors import Box, DlibDetector, FaceDetector, HaarDetector, to_gray, to_rgb


class FaceFinder(FaceDetector):
    """``detector`` first; on a miss the padded, enlarged retry with ``detector`` and ``second``, then the
    whole-photo fallback (see the module text).

    ``pad``: edge pixels added per side, as a fraction of the longer side; ``retry_side``: the padded photo's
    longer side is enlarged to at least this many pixels; ``crop_side``: photos whose shorter side is at most
    this are face-crop sized (``0`` turns the fallback off); ``max_aspect``: longer over shorter side at most;
    ``min_contrast``: the gray levels' standard deviation at least (a blank image is not a face);
    ``min_face``: a face found by the retry must span at least this fraction of the photo's shorter side.
    """

    name = "finder"

    def __init__(
        self,
        detector: FaceDetector | None = None,
        second: FaceDetector | None = None,
        pad: float = 0.25,
        retry_side: int = 240,
        thumbnail_side: int = 160,
        crop_side: int = 400,
        evidence_score: float = -0.8,
        max_aspect: float = 1.6,
        min_contrast: float = 10.0,
        min_face: float = 0.3,
    ) -> None:
        self.detector = detector if detector is not None else DlibDetector()
        super().__init__(self.detector.margin, self.detector.max_side)
        self.second = second if second is not None else HaarDetector(min_neighbors=3)
        if not 0 <= pad <= 1:
            raise ConfigError(f"pad must lie in [0, 1] (a fraction of the photo's longer side), got {pad}")
        if crop_side < 0 or retry_side < 0:
            raise ConfigError(f"crop_side and retry_side must be >= 0 pixels, got {crop_side}, {retry_side}")
        if max_aspect < 1:
            raise ConfigError(f"max_aspect must be >= 1 (longer over shorter side), got {max_aspect}")
        self.pad, self.retry_side, self.crop_side = float(pad), int(retry_side), int(crop_side)
        self.max_aspect, self.min_contrast = float(max_aspect), float(min_contrast)
        self.thumbnail_side, self.evidence_score = int(thumbnail_side), float(evidence_score)
        self.min_face = float(min_face)
        self.needs_color = self.detector.needs_color or self.second.needs_color

    def _params(self) -> dict[str, Any]:
        return {
            "detector": self.detector.settings(),
            "second": self.second.settings(),
            "pad": self.pad,
            "retry_side": self.retry_side,
            "thumbnail_side": self.thumbnail_side,
            "crop_side": self.crop_side,
            "evidence_score": self.evidence_score,
            "max_aspect": self.max_aspect,
            "min_contrast": self.min_contrast,
            "min_face": self.min_face,
        }

    def _load(self) -> Any:
        import dlib  # the face score of the fallback's evidence check; loaded on first use, never pickled

        return dlib.get_frontal_face_detector()

    def _find(self, image: np.ndarray) -> list[Box]:  # detect() is overridden: the wrapped detectors scan
        raise NotImplementedError

    @property
    def threads(self) -> int | None:
        return self.detector.threads

    @threads.setter
    def threads(self, value: int | None) -> None:  # pool workers set it; the wrapped detectors use it
        for d in (getattr(self, "detector", None), getattr(self, "second", None)):
            if d is not None:
                d.threads = value

    def detect(self, image: np.ndarray, bgr: bool = False) -> list[Box]:
        boxes = self.detector.detect(image, bgr)
        if boxes:
            return boxes
        prepared = to_rgb(image, bgr) if self.needs_color else to_gray(image, bgr)
        height, width = prepared.shape[:2]
        boxes, padded = self._padded_retry(prepared)
        if boxes:
            return boxes
        if self.looks_like_one_face(to_gray(prepared), to_gray(padded)):
            return [Box(0, 0, width, height, 0.0, "fallback")]
        return []

    def _padded_retry(self, image: np.ndarray) -> tuple[list[Box], np.ndarray]:
        height, width = image.shape[:2]
        side = round(self.pad * max(height, width))
        padded = cv2.copyMakeBorder(image, side, side, side, side, cv2.BORDER_REPLICATE)
        scale = max(1.0, self.retry_side / max(padded.shape[:2]))
        if scale > 1.0:
            padded = cv2.resize(padded, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        for detector in (self.detector, self.second):
            found = detector.detect(padded, False)
            if found:
                back = [
                    Box(
                        round(b.x / scale) - side,
                        round(b.y / scale) - side,
                        round(b.w / scale),
                        round(b.h / scale),
                        b.score,
                    )
                    for b in found
                ]
                boxes = [b.clipped(width, height) for b in back]
                # a crop's face fills much of it: a small hit in a retry that found nothing at first is noise
                boxes = [b for b in boxes if min(b.w, b.h) >= self.min_face * min(width, height)]
                if boxes:
                    return boxes, padded
        return [], padded

    def looks_like_one_face(self, gray: np.ndarray, padded: np.ndarray) -> bool:
        """A face-crop-shaped photo (near square, not flat) that is either thumbnail sized or, up to
        ``crop_side``, where dlib's face score on the ``padded`` retry image reaches ``evidence_score`` (a
        below-threshold face: too tight or too blurred to pass, unlike a wall or a page of text)."""
        height, width = gray.shape[:2]
        short, long = min(height, width), max(height, width)
        if not (0 < short <= self.crop_side and long / short <= self.max_aspect):
            return False
        if float(gray.std()) < self.min_contrast:
            return False
        return short <= self.thumbnail_side or self.face_score(padded) >= self.evidence_score

    def face_score(self, gray: np.ndarray) -> float:
        """dlib's best frontal-face score anywhere in ``gray`` at 2x (``-inf``: no window came close)."""
        _, scores, _ = self.model.run(gray, 1, self.evidence_score)
        return max(scores, default=float("-inf"))

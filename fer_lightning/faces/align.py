"""Eye-levelled, FER2013-framed face crops: :class:`FaceAligner`.

FER2013's faces were cut automatically from web photos and resized to 48x48, so the network has seen faces
framed one particular way: measured with this module's eye finder on 2,000 of its Training faces
(upscaled 4x; eyes found in 1,413), the median eye midpoint lies 0.382 of the side below the top, and the
eyes are 0.383 of the side apart (``benchmarks/bench_photo_accuracy.py --measure-fer2013`` prints the
figures). A detector's box frames a photo's face its own way (dlib's stops at the brows), and a tilted head
stays tilted. The aligner finds both eyes inside the detected box, turns the photo so they are level, and
scales and shifts it so they land where FER2013 has them. Where the eyes are not found it returns ``None``
and the caller keeps the detector's plain crop (counted in the reports). What it buys is robustness to tilt:
on the JAFFE photos turned by 25 degrees, 63 of 108 right instead of 53; on the upright photos (JAFFE sitters
hold their heads level) 64 instead of 63, within noise (``benchmarks/bench_photo_accuracy.py``).

Eyes come from the cascades that ship inside the opencv wheel (``cv2.data.haarcascades``): nothing is
downloaded, and no other dependency is needed. Landmark models were ruled out: dlib's wheel has no landmark
model, and the packages that ship one either download it at run time or pin another torch / OpenCV build.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from fer_lightning.emotions import IMAGE_SIZE
from fer_lightning.errors import ConfigError
from fer_lightning.faces.detectors import Box, crop_face

#: Tried in order; the second also finds eyes behind glasses, where the first often fails.
EYE_CASCADES = ("haarcascade_eye.xml", "haarcascade_eye_tree_eyeglasses.xml")
#: Extra search tilts (degrees): the cascades were trained on upright eyes and lose them beyond ~15 degrees.
SEARCH_TILTS = (0.0, 20.0, -20.0)
#: Where the eyes are searched, as fractions of the face box height (dlib, Haar and MTCNN boxes all hold the
# eyes in this band), and how far apart two eyes may plausibly be, as fractions of the box width.
_BAND = (0.1, 0.65)
_EYE_DISTANCE = (0.25, 0.75)
_MAX_TILT_IN_SEARCH = 25.0
#: Eye lines tilted more than this (degrees) are measured again in the face turned level.
_RECHECK_ABOVE = 2.0
#: Width in pixels the face box is scaled to for the eye search (eyes ~25 px, above the 20 px window).
WORK_WIDTH = 120


@dataclass(frozen=True)
class Eyes:
    """Eye centres in image pixels; ``left`` is the one on the image's left."""

    left: tuple[float, float]
    right: tuple[float, float]

    @property
    def angle(self) -> float:
        """Degrees the eye line is turned clockwise from level in the image (y points down)."""
        return math.degrees(math.atan2(self.right[1] - self.left[1], self.right[0] - self.left[0]))

    @property
    def distance(self) -> float:
        return math.hypot(self.right[0] - self.left[0], self.right[1] - self.left[1])

    @property
    def centre(self) -> tuple[float, float]:
        return (self.left[0] + self.right[0]) / 2, (self.left[1] + self.right[1]) / 2


class FaceAligner:
    """Finds the eyes in a face box and cuts a crop with them level at FER2013's framing.

    ``eye_y``: height of the eye midpoint below the crop's top, ``eye_distance``: distance between the eye
    centres, both as fractions of the crop side; the defaults are FER2013's medians (module docstring). The
    cascades load lazily, so the object pickles cheaply into worker processes.
    """

    def __init__(self, eye_y: float = 0.382, eye_distance: float = 0.383) -> None:
        if not 0.0 < eye_y < 1.0:
            raise ConfigError(f"eye_y must lie in (0, 1) (a fraction of the crop side), got {eye_y}")
        if not 0.05 <= eye_distance <= 0.95:
            raise ConfigError(
                f"eye_distance must lie in [0.05, 0.95] (a fraction of the crop side), got {eye_distance}"
            )
        self.eye_y, self.eye_distance = float(eye_y), float(eye_distance)
        self._cascades: list[cv2.CascadeClassifier] | None = None

    def settings(self) -> dict[str, Any]:
        """Everything that changes the crop; part of the per-photo cache key."""
        return {"eye_y": self.eye_y, "eye_distance": self.eye_distance, "cascades": list(EYE_CASCADES)}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cascades": None}  # cv2 classifiers do not pickle; rebuilt in the worker

    def __repr__(self) -> str:
        return f"FaceAligner(eye_y={self.eye_y}, eye_distance={self.eye_distance})"

    @property
    def cascades(self) -> list[cv2.CascadeClassifier]:
        if self._cascades is None:
            self._cascades = [_load_cascade(name) for name in EYE_CASCADES]
        return self._cascades

    def find_eyes(self, gray: np.ndarray, box: Box) -> Eyes | None:
        """Both eyes of the face in ``box`` of the uint8 gray image, or ``None`` when no plausible pair is
        found: first upright with each cascade, then in copies of the face turned by :data:`SEARCH_TILTS`.
        A tilted pair is looked for once more in the face turned level: the cascades' boxes sit a little
        toward level on tilted eyes (15 degrees read as ~13.5 on JAFFE), and on level eyes they do not."""
        eyes = self._search(gray, box, SEARCH_TILTS)
        if eyes is not None and abs(eyes.angle) > _RECHECK_ABOVE:
            eyes = self._search(gray, box, (eyes.angle,)) or eyes
        return eyes

    def _search(self, gray: np.ndarray, box: Box, tilts: tuple[float, ...]) -> Eyes | None:
        for tilt in tilts:
            view, back = _turned_face(gray, box, tilt)
            for cascade in self.cascades:
                pair = _eye_pair(view, cascade)
                if pair is not None:
                    (lx, ly), (rx, ry) = (_apply(back, p) for p in pair)
                    return Eyes((lx, ly), (rx, ry)) if lx <= rx else Eyes((rx, ry), (lx, ly))
        return None

    def crop(self, gray: np.ndarray, eyes: Eyes, size: int = IMAGE_SIZE) -> np.ndarray:
        """uint8 ``size``x``size`` crop with ``eyes`` level, their midpoint at (0.5, ``eye_y``) of the side
        and ``eye_distance`` apart. Cut at the photo's own resolution, then shrunk with area averaging as
        :func:`~fer_lightning.faces.detectors.crop_face` does; outside the photo, edges are replicated."""
        side = max(1, round(eyes.distance / self.eye_distance))
        cx, cy = eyes.centre
        matrix = cv2.getRotationMatrix2D(
            (cx, cy), eyes.angle, 1.0
        )  # turns the eye line level about its centre
        matrix[:, 2] += (0.5 * side - cx, self.eye_y * side - cy)
        face = cv2.warpAffine(
            gray, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        return cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)

    def align(self, gray: np.ndarray, box: Box, size: int = IMAGE_SIZE) -> np.ndarray | None:
        """The aligned crop of the face in ``box``, or ``None`` when its eyes are not found."""
        eyes = self.find_eyes(gray, box)
        return None if eyes is None else self.crop(gray, eyes, size)


def _load_cascade(name: str) -> cv2.CascadeClassifier:
    path = os.path.join(cv2.data.haarcascades, name)
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise FileNotFoundError(
            f"eye cascade {path!r} could not be loaded: is opencv-python-headless complete?"
        )
    return cascade


def _turned_face(gray: np.ndarray, box: Box, tilt: float) -> tuple[np.ndarray, np.ndarray]:
    """The face box's eye band at :data:`WORK_WIDTH` pixels wide, turned by ``tilt`` degrees about the box
    centre, and the 2x3 matrix taking its pixel coordinates back to ``gray``'s.

    A fixed working width keeps the search cost per face constant (a face filling a 12-megapixel photo costs
    what a JAFFE face costs) and lifts small faces' eyes above the cascades' 20-pixel window."""
    scale = WORK_WIDTH / box.w
    pad = max(box.w, box.h) // 2  # room for the turn
    x0, y0 = max(0, box.x - pad), max(0, box.y - pad)
    region = gray[y0 : box.y + box.h + pad, x0 : box.x + box.w + pad]
    shrink_x = shrink_y = 1.0
    if scale < 1.0:  # area-average first: warping straight down would alias a large face
        size = (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale)))
        shrink_x, shrink_y = size[0] / region.shape[1], size[1] / region.shape[0]
        region = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
    to_region = np.array([[shrink_x, 0.0, -x0 * shrink_x], [0.0, shrink_y, -y0 * shrink_y], [0.0, 0.0, 1.0]])
    top, bottom = _BAND
    cx, cy = (box.x + box.w / 2 - x0) * shrink_x, (box.y + box.h / 2 - y0) * shrink_y
    turn = cv2.getRotationMatrix2D((cx, cy), tilt, scale / shrink_x)
    # the box centre lands at the middle of a WORK_WIDTH-wide box, whose eye band starts at row 0
    turn[:, 2] += (WORK_WIDTH / 2 - cx, (0.5 - top) * box.h * scale - cy)
    band_size = (WORK_WIDTH, max(1, round((bottom - top) * box.h * scale)))
    band = cv2.warpAffine(region, turn, band_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    to_band = np.vstack([turn, [0.0, 0.0, 1.0]]) @ to_region
    return band, np.linalg.inv(to_band)[:2]


def _apply(matrix: np.ndarray, point: tuple[float, float]) -> tuple[float, float]:
    x, y = matrix @ np.array([point[0], point[1], 1.0])
    return float(x), float(y)


def _eye_pair(band: np.ndarray, cascade: cv2.CascadeClassifier) -> tuple[tuple, tuple] | None:
    """The most confident eye in each half of ``band`` (centres), if the two are a plausible pair."""
    height, width = band.shape[:2]
    rects, _, weights = cascade.detectMultiScale3(
        band,
        scaleFactor=1.1,
        minNeighbors=3,
        minSize=(max(8, width // 8),) * 2,
        maxSize=(width // 2,) * 2,
        outputRejectLevels=True,
    )
    halves: tuple[list, list] = ([], [])
    for (x, y, w, h), weight in zip(rects, np.ravel(weights)):
        centre = (x + w / 2, y + h / 2)
        halves[int(centre[0] >= width / 2)].append((float(weight), (float(centre[0]), float(centre[1]))))
    if not halves[0] or not halves[1]:
        return None
    left, right = (max(half)[1] for half in halves)
    distance = math.hypot(right[0] - left[0], right[1] - left[1]) / width
    tilt = abs(math.degrees(math.atan2(right[1] - left[1], right[0] - left[0])))
    if not _EYE_DISTANCE[0] <= distance <= _EYE_DISTANCE[1] or tilt > _MAX_TILT_IN_SEARCH:
        return None
    return left, right


def framed_crop(
    gray: np.ndarray, box: Box, margin: float, aligner: FaceAligner | None, size: int = IMAGE_SIZE
) -> tuple[np.ndarray, bool | None]:
    """The crop the photo pipeline keeps for the face in ``box``, and whether it is aligned (``None``: no
    aligner asked for). Aligned when ``aligner`` finds the eyes, else the detector's box grown by
    ``margin`` (a whole-photo fallback box is the crop as it is: its photo already is a face crop)."""
    aligned = aligner.align(gray, box, size) if aligner is not None else None
    if aligned is not None:
        return aligned, True
    margin = 0.0 if box.source == "fallback" else margin
    return crop_face(gray, box, margin, size), None if aligner is None else False

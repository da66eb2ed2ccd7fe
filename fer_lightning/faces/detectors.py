"""Face detection and FER2013-style cropping: one :class:`FaceDetector` interface, four backends.

Backends (Hydra group ``conf/detector/``): ``dlib`` (default), ``haar``, ``none`` here, and ``mtcnn`` in
:mod:`fer_lightning.faces.mtcnn` (its own module because its package is an optional extra).

Why dlib HOG is the default: on the JAFFE photos every detector finds every face, and dlib is the fastest
through decode + detect + crop, keeps finding small (thanks to its upsample retry) and tilted faces, and is a
project dependency (facenet-pytorch pins an older torch, so MTCNN is an optional extra). It misses more partly
hidden faces than Haar or MTCNN do. ``benchmarks/bench_faces.py`` measures all of this; the figures are in
``benchmarks/README.md``. The photo tools wrap it in :class:`~fer_lightning.faces.fallback.FaceFinder`.

Every backend: detection runs on a copy downscaled to at most ``max_side`` pixels (speed on camera-size
photos), boxes are mapped back and the crop is cut from the full-resolution image. The largest face wins.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, NamedTuple

import cv2
import numpy as np

from fer_lightning.emotions import IMAGE_SIZE
from fer_lightning.images import ImageReadError, as_uint8_image, read_image, to_gray, to_rgb
from fer_lightning.errors import ConfigError, DetectorUnavailableError

# read_image and ImageReadError are re-exported: callers (preprocessing, the predictor) need one import
__all__ = [
    "Box",
    "DetectorUnavailableError",
    "DlibDetector",
    "FaceDetector",
    "Faces",
    "HaarDetector",
    "ImageReadError",
    "NoDetector",
    "center_crop",
    "crop_face",
    "read_image",
    "to_gray",
]


@dataclass(frozen=True)
class Box:
    """Axis-aligned face box in pixel coordinates of the image it was found in; ``score`` is
    backend-specific; ``source`` says how it was found: ``detected`` by a detector, or ``fallback``, the whole
    photo taken as the face because it looks like a face crop (:mod:`fer_lightning.faces.fallback`)."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    source: str = "detected"

    @property
    def area(self) -> int:
        return self.w * self.h

    def scaled(self, factor: float) -> Box:
        return Box(
            round(self.x * factor),
            round(self.y * factor),
            round(self.w * factor),
            round(self.h * factor),
            self.score,
            self.source,
        )

    def clipped(self, width: int, height: int) -> Box:
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = min(width, self.x + self.w), min(height, self.y + self.h)
        return Box(x0, y0, max(0, x1 - x0), max(0, y1 - y0), self.score, self.source)


class Faces(NamedTuple):
    """Result of :meth:`FaceDetector.extract`: the largest face's 48x48 crop (``None`` if no face) and all
    boxes."""

    crop: np.ndarray | None
    boxes: list[Box]


def crop_face(image: np.ndarray, box: Box, margin: float = 0.0, size: int = IMAGE_SIZE) -> np.ndarray:
    """uint8 ``size``x``size`` gray crop of a square centred on ``box``, grown by ``margin`` x box side per
    edge.

    Square because FER2013 faces are square and a non-square resize would distort the expression; the side is
    the box's longer side. Parts of the square outside the image are filled by edge replication (a face at the
    border keeps its position in the crop instead of being shifted or stretched).
    """
    gray = to_gray(image)
    height, width = gray.shape
    side = max(1, round(max(box.w, box.h) * (1.0 + 2.0 * margin)))
    x0 = round(box.x + box.w / 2 - side / 2)
    y0 = round(box.y + box.h / 2 - side / 2)
    x1, y1 = x0 + side, y0 + side
    region = gray[max(0, y0) : min(height, y1), max(0, x0) : min(width, x1)]
    if region.size == 0:
        raise ValueError(f"{box} lies outside the {width}x{height} image")
    pads = (max(0, -y0), max(0, y1 - height), max(0, -x0), max(0, x1 - width))
    if any(pads):
        region = cv2.copyMakeBorder(region, *pads, borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA)


def center_crop(image: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Centre square (side = shorter image side) as a 48x48 gray crop: the ``no_face=center_crop`` fallback.

    The notebook resized the whole frame instead, which squashes a landscape photo; a centre square keeps the
    aspect ratio and, for portraits, usually still holds the face.
    """
    gray = to_gray(image)
    height, width = gray.shape
    side = min(height, width)
    return crop_face(gray, Box((width - side) // 2, (height - side) // 2, side, side), 0.0, size)


class FaceDetector(ABC):
    """Finds faces in a numpy image (gray, RGB, BGR with ``bgr=True``, or RGBA).

    Subclasses implement :meth:`_find` on the (possibly downscaled) gray or RGB image; this class does the
    colour conversion, the downscale and mapping back, sorting, and the crop. Detector objects are cheap to
    pickle: heavy models load lazily on first use, so each worker process builds its own.
    """

    name: str = "base"
    needs_color = False

    def __init__(self, margin: float = 0.0, max_side: int = 1024) -> None:
        if margin < 0:
            raise ConfigError(f"margin must be >= 0 (a fraction of the box side), got {margin}")
        if max_side < 64:
            raise ConfigError(f"max_side must be >= 64 pixels, got {max_side}")
        self.margin = float(margin)
        self.max_side = int(max_side)
        self.threads: int | None = None  # set to 1 in pool workers; None keeps each library's default
        self._model: Any = None

    @abstractmethod
    def _load(self) -> Any:
        """Build the backend's model (called once, lazily)."""

    @abstractmethod
    def _find(self, image: np.ndarray) -> list[Box]:
        """Boxes in ``image``'s own pixel coordinates; ``image`` is gray, or RGB when ``needs_color``."""

    def settings(self) -> dict[str, Any]:
        """Everything that changes the output; part of the per-image cache key."""
        return {"name": self.name, "margin": self.margin, "max_side": self.max_side, **self._params()}

    def _params(self) -> dict[str, Any]:
        return {}

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = self._load()
        return self._model

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}  # models (cv2, dlib, torch) are rebuilt in the worker

    def detect(self, image: np.ndarray, bgr: bool = False) -> list[Box]:
        """All faces, largest first, in ``image``'s pixel coordinates."""
        prepared = to_rgb(image, bgr) if self.needs_color else to_gray(image, bgr)
        height, width = prepared.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        if scale < 1.0:
            small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
            prepared = cv2.resize(prepared, small_size, interpolation=cv2.INTER_AREA)
        boxes = [b.scaled(1.0 / scale).clipped(width, height) for b in self._find(prepared)]
        return sorted(
            (b for b in boxes if b.w > 1 and b.h > 1), key=lambda b: (b.area, b.score), reverse=True
        )

    def extract(self, image: np.ndarray, bgr: bool = False) -> Faces:
        """The largest face as a 48x48 uint8 crop (with this detector's margin) and every box found."""
        boxes = self.detect(image, bgr)
        crop = crop_face(to_gray(image, bgr), boxes[0], self.margin) if boxes else None
        return Faces(crop, boxes)

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.settings().items() if k != "name")
        return f"{type(self).__name__}({settings})"


class HaarDetector(FaceDetector):
    """OpenCV's Viola-Jones cascade, the notebook's detector (``score`` = number of merged neighbour hits)."""

    name = "haar"

    def __init__(
        self,
        cascade: str = "haarcascade_frontalface_default.xml",
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 30,
        margin: float = 0.0,
        max_side: int = 1024,
    ) -> None:
        super().__init__(margin, max_side)
        self.cascade, self.scale_factor = cascade, float(scale_factor)
        self.min_neighbors, self.min_size = int(min_neighbors), int(min_size)

    def _params(self) -> dict[str, Any]:
        return {
            "cascade": self.cascade,
            "scale_factor": self.scale_factor,
            "min_neighbors": self.min_neighbors,
            "min_size": self.min_size,
        }

    def _load(self) -> cv2.CascadeClassifier:
        path = (
            self.cascade
            if os.path.isfile(self.cascade)
            else os.path.join(cv2.data.haarcascades, self.cascade)
        )
        classifier = cv2.CascadeClassifier(path)
        if classifier.empty():
            raise FileNotFoundError(
                f"Haar cascade {path!r} could not be loaded (missing or not a cascade XML)"
            )
        return classifier

    def _find(self, image: np.ndarray) -> list[Box]:
        rects, hits = self.model.detectMultiScale2(
            image,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
        )
        return [Box(int(x), int(y), int(w), int(h), float(n)) for (x, y, w, h), n in zip(rects, hits)]


class DlibDetector(FaceDetector):
    """dlib's HOG + linear SVM frontal detector (``score`` = SVM margin).

    ``upsample`` doubles the image that many times before scanning (finds faces down to ~40 px at 1, ~80 px at
    0, each level ~4x slower); ``retry_upsample`` scans once more at that level only when the first pass found
    nothing, so photos with a large face stay fast and small faces are still found.
    """

    name = "dlib"

    def __init__(
        self,
        upsample: int = 0,
        retry_upsample: int | None = 1,
        min_score: float = 0.0,
        margin: float = 0.1,
        max_side: int = 1024,
    ) -> None:
        super().__init__(margin, max_side)
        self.upsample, self.min_score = int(upsample), float(min_score)
        self.retry_upsample = None if retry_upsample is None else int(retry_upsample)

    def _params(self) -> dict[str, Any]:
        return {"upsample": self.upsample, "retry_upsample": self.retry_upsample, "min_score": self.min_score}

    def _load(self) -> Any:
        import dlib  # imported here so that the other backends work where dlib is not installed

        return dlib.get_frontal_face_detector()

    def _run(self, image: np.ndarray, upsample: int) -> list[Box]:
        rects, scores, _ = self.model.run(image, upsample, self.min_score)
        return [Box(r.left(), r.top(), r.width(), r.height(), float(s)) for r, s in zip(rects, scores)]

    def _find(self, image: np.ndarray) -> list[Box]:
        boxes = self._run(image, self.upsample)
        if not boxes and self.retry_upsample is not None and self.retry_upsample > self.upsample:
            boxes = self._run(image, self.retry_upsample)
        return boxes


class NoDetector(FaceDetector):
    """``detector=none``: the input already is a face crop (e.g. FER2013 image folders); the whole image is
    the box."""

    name = "none"

    def _load(self) -> None:
        return None

    @property
    def model(self) -> None:
        return None

    def _find(self, image: np.ndarray) -> list[Box]:
        return self.detect(image)

    def detect(self, image: np.ndarray, bgr: bool = False) -> list[Box]:
        height, width = as_uint8_image(image).shape[:2]  # checked; no downscale needed for the whole frame
        return [Box(0, 0, width, height)]

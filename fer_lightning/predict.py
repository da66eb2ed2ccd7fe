"""Predictor: a photo (path or numpy image) → detected faces → class probabilities, with batched inference::

    from fer_lightning.predict import Predictor
    faces = Predictor.from_checkpoint("model.pt").predict(frame, color="bgr")  # a cv2 frame
    faces[0].label, faces[0].confidence, faces[0].box

Faces are found by a ``faces.detectors`` backend and classified by ``inference.predict_logits``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fer_lightning.checkpoints import load_network
from fer_lightning.data.arrays import IMAGE_SIZE
from fer_lightning.faces.detectors import Box, DlibDetector, FaceDetector, crop_face
from fer_lightning.images import as_uint8_image, read_image, to_gray
from fer_lightning.errors import InputError
from fer_lightning.inference import predict_logits
from fer_lightning.utils.threads import intra_op_threads

COLORS = ("bgr", "rgb", "gray")
#: ``num_threads="auto"`` runs batches of up to this many faces on one thread (see :func:`intra_op_threads`).
SMALL_BATCH = 16


@dataclass(frozen=True)
class FacePrediction:
    """One detected face: its box in the photo, the 48x48 crop the network saw, and the class
    probabilities."""

    index: int  # 0 = the largest face in the photo
    box: Box
    probabilities: dict[str, float]
    crop: np.ndarray = field(repr=False, compare=False)  # arrays have no single truth value for ==

    @property
    def label(self) -> str:
        return max(self.probabilities, key=self.probabilities.__getitem__)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]


def crop_batch(crops: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Contiguous uint8 (N, 48, 48) from 48x48 crops; :class:`InputError` naming the first that is not one."""
    if isinstance(crops, np.ndarray | np.generic):  # np.generic: a numpy scalar passed by mistake
        if crops.ndim != 3:
            raise InputError(
                f"classify needs an (N, {IMAGE_SIZE}, {IMAGE_SIZE}) array of face crops or a list "
                f"of ({IMAGE_SIZE}, {IMAGE_SIZE}) crops, got an array shaped {crops.shape}"
            )
        if crops.dtype == np.uint8 and crops.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE):
            return np.ascontiguousarray(crops)  # the common case, as detect() makes them: nothing to convert
    checked = []
    for i, crop in enumerate(crops):
        crop = np.asarray(crop)
        if crop.shape != (IMAGE_SIZE, IMAGE_SIZE):
            raise InputError(
                f"classify needs {IMAGE_SIZE}x{IMAGE_SIZE} gray face crops (as detect() makes "
                f"them); crop {i} has shape {crop.shape}"
            )
        try:
            checked.append(as_uint8_image(crop))
        except InputError as e:
            raise InputError(f"crop {i}: {e}") from None
    return np.stack(checked) if checked else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)


class Predictor:
    """Face detector + classifier. ``predict`` handles one photo; ``predict_many`` classifies the faces of
    many photos in shared batches of ``batch_size`` (one forward pass per batch instead of one per face).

    ``num_threads``: torch intra-op threads while classifying on the CPU; ``"auto"`` = 1 for batches of up to
    :data:`SMALL_BATCH` faces (latency), torch's setting for larger ones (throughput); ``None`` = never change
    it.
    """

    def __init__(
        self,
        net: nn.Module,
        classes: Sequence[str],
        detector: FaceDetector | None = None,
        batch_size: int = 256,
        device: str | torch.device = "cpu",
        num_threads: int | str | None = "auto",
    ) -> None:
        self.device = torch.device(device)
        if not (
            num_threads is None or num_threads == "auto" or (isinstance(num_threads, int) and num_threads > 0)
        ):
            raise ValueError(f"num_threads must be 'auto', None or a positive int, got {num_threads!r}")
        self.num_threads = num_threads
        # channels_last is ~1.7x faster for these convnets on the CPU (see FERClassifier.configure_model)
        self.net = net.eval().to(self.device, memory_format=torch.channels_last)
        self.classes = list(classes)
        self.detector = detector if detector is not None else DlibDetector()
        self.batch_size = int(batch_size)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path | None = None,
        detector: FaceDetector | None = None,
        batch_size: int = 256,
        device: str | torch.device = "cpu",
        num_threads: int | str | None = "auto",
    ) -> Predictor:
        """From a Lightning ``.ckpt`` or a weights file (``None``: the shipped weights); default detector
        dlib."""
        net, classes = load_network(path, device=device)
        return cls(net, classes, detector, batch_size, device, num_threads)

    def _threads_for(self, faces: int) -> int | None:
        if self.device.type != "cpu":
            return None
        if self.num_threads == "auto":
            return 1 if faces <= SMALL_BATCH else None
        return self.num_threads

    @staticmethod
    def load_image(image: np.ndarray | str | Path, color: str = "bgr") -> tuple[np.ndarray, bool]:
        """(uint8 image, whether it is BGR) from a path (decoded as RGB or gray) or a numpy image in
        ``color``.

        Arrays go through :func:`as_uint8_image`: float images in 0..1 or 0..255 are both accepted; an empty,
        wrongly shaped, non-finite or non-numeric array raises :class:`InputError` naming its shape and dtype.
        """
        if isinstance(image, str | Path):
            return read_image(image), False  # raises ImageReadError naming the file and the cause
        if color not in COLORS:
            raise InputError(f"color must be one of {COLORS}, got {color!r}")
        image = as_uint8_image(image)
        if color == "gray" and image.ndim != 2 and image.shape[2] != 1:
            raise InputError(f"color='gray' needs an (H, W) image, got shape {image.shape}")
        return image, color == "bgr"

    def detect(self, image: np.ndarray, bgr: bool = False) -> tuple[list[Box], list[np.ndarray]]:
        """Boxes (largest first) and their 48x48 gray crops, cut with the detector's margin as in
        preprocessing.

        The detector gets the image in colour (MTCNN uses it; dlib and Haar convert to gray themselves)."""
        boxes = self.detector.detect(image, bgr)
        gray = to_gray(image, bgr) if boxes else None
        return boxes, [crop_face(gray, box, self.detector.margin) for box in boxes]

    def classify(self, crops: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """(N, classes) probabilities for 48x48 gray face crops (an (N, 48, 48) array or a sequence of
        (48, 48) arrays, uint8 or as :func:`as_uint8_image` accepts), ``batch_size`` faces per forward
        pass."""
        faces = torch.from_numpy(crop_batch(crops))
        if len(faces) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        with intra_op_threads(self._threads_for(len(faces))):
            logits = predict_logits(self.net, faces, self.batch_size, self.device)
        return logits.softmax(1).numpy()

    def to_faces(self, boxes: list[Box], crops: list[np.ndarray], probs: np.ndarray) -> list[FacePrediction]:
        """Pair one photo's boxes and crops with their rows of :meth:`classify`'s output."""
        return [
            FacePrediction(i, box, dict(zip(self.classes, map(float, p))), crop)
            for i, (box, crop, p) in enumerate(zip(boxes, crops, probs))
        ]

    def predict(self, image: np.ndarray | str | Path, color: str = "bgr") -> list[FacePrediction]:
        """Every face in one photo, largest first; ``[]`` when no face is found. ``color`` applies to
        arrays."""
        boxes, crops = self.detect(*self.load_image(image, color))
        return self.to_faces(boxes, crops, self.classify(crops))

    def predict_many(
        self, images: Iterable[np.ndarray | str | Path], color: str = "bgr"
    ) -> list[list[FacePrediction]]:
        """``predict`` for many photos, with the faces of all of them classified in shared batches."""
        detected = []
        for i, image in enumerate(images):
            try:
                detected.append(self.detect(*self.load_image(image, color)))
            except InputError as e:  # which of the many images is at fault
                raise InputError(f"images[{i}]: {e}") from None
        probs = self.classify([crop for _, crops in detected for crop in crops])
        results, start = [], 0
        for boxes, crops in detected:
            results.append(self.to_faces(boxes, crops, probs[start : start + len(crops)]))
            start += len(crops)
        return results

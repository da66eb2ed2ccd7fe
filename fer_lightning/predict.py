"""Predictor: a photo (path or numpy image) → detected faces → class probabilities, with batched inference::

    from fer_lightning.predict import Predictor
    faces = Predictor.from_checkpoint("model.pt").predict(frame, color="bgr")  # a cv2 frame
    faces[0].label, faces[0].confidence, faces[0].box

Faces are found by a ``faces.detectors`` backend and classified by ``inference.predict_logits`` (torch) or,
with ``backend="onnxruntime"``, by the same network exported to ONNX (:mod:`fer_lightning.onnx_backend`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fer_lightning.checkpoints import DEFAULT_PHOTO_MODEL, PRETRAINED, load_network
from fer_lightning.data.arrays import IMAGE_SIZE
from fer_lightning.faces.align import FaceAligner, framed_crop
from fer_lightning.faces.detectors import Box, DlibDetector, FaceDetector
from fer_lightning.images import as_uint8_image, read_image, to_gray
from fer_lightning.errors import ConfigError, InputError
from fer_lightning.inference import predict_logits
from fer_lightning.onnx_backend import OnnxNetwork, check_backend
from fer_lightning.utils.devices import resolve_device
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
    it. With ``backend="onnxruntime"`` the same rule picks ONNX Runtime's intra-op threads.

    ``aligner``: a :class:`~fer_lightning.faces.align.FaceAligner` levels the eyes and frames each face as
    FER2013 does (the photo pipeline's default, and the scripts'); ``None`` cuts the detector's box as it is.

    ``backend``: ``"torch"`` runs ``net`` eagerly; ``"onnxruntime"`` exports it in memory and runs it in ONNX
    Runtime on the CPU (``net`` may then also be an :class:`~fer_lightning.onnx_backend.OnnxNetwork` read from
    an ``.onnx`` file). ``self.net`` is the torch network whenever there is one (Grad-CAM reads it).
    """

    def __init__(
        self,
        net: nn.Module | OnnxNetwork,
        classes: Sequence[str],
        detector: FaceDetector | None = None,
        batch_size: int = 256,
        device: str | torch.device = "cpu",
        num_threads: int | str | None = "auto",
        backend: str = "torch",
        aligner: FaceAligner | None = None,
    ) -> None:
        self.device = resolve_device(device)
        if not (
            num_threads is None or num_threads == "auto" or (isinstance(num_threads, int) and num_threads > 0)
        ):
            raise ValueError(f"num_threads must be 'auto', None or a positive int, got {num_threads!r}")
        self.num_threads = num_threads
        self.backend = check_backend(backend)
        self.classes = list(classes)
        self.runtime: OnnxNetwork | None = None  # set: classify runs in ONNX Runtime
        if isinstance(net, OnnxNetwork):
            if backend != "onnxruntime":
                raise ConfigError(f"{net.source} is an ONNX model: it runs with backend='onnxruntime' only")
            if net.classes != self.classes:
                raise ConfigError(f"classes {self.classes} differ from the ONNX model's {net.classes}")
            self.net, self.runtime = None, net
        else:
            # channels_last is ~1.7x faster for these convnets on the CPU (see FERClassifier.configure_model)
            self.net = net.eval().to(self.device, memory_format=torch.channels_last)
            if backend == "onnxruntime":
                self.runtime = OnnxNetwork.from_network(net, self.classes)
        self.detector = detector if detector is not None else DlibDetector()
        self.aligner = aligner
        self.batch_size = int(batch_size)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path | None = None,
        detector: FaceDetector | None = None,
        batch_size: int = 256,
        device: str | torch.device = "cpu",
        num_threads: int | str | None = "auto",
        backend: str = "torch",
        aligner: FaceAligner | None = None,
    ) -> Predictor:
        """From a Lightning ``.ckpt`` or a weights file (``None``: the shipped weights); default detector
        dlib. With ``backend="onnxruntime"`` the network is exported in memory, or ``path`` may be an
        ``.onnx`` file made by ``scripts/export.py``."""
        check_backend(backend)  # before the checkpoint is read
        if path is not None and Path(path).suffix.lower() == ".onnx":
            if backend != "onnxruntime":
                raise ConfigError(f"{path} is an ONNX model: load it with backend=onnxruntime")
            runtime = OnnxNetwork.from_file(path)
            return cls(runtime, runtime.classes, detector, batch_size, device, num_threads, backend, aligner)
        net, classes = load_network(path, device=device)
        return cls(net, classes, detector, batch_size, device, num_threads, backend, aligner)

    @classmethod
    def from_pretrained(
        cls, name: str | None = None, detector: FaceDetector | None = None, **kwargs: Any
    ) -> Predictor:
        """The shipped weights by name: ``"fer2013"`` (FER2013's 7 classes) or ``"ferplus"`` (FER+'s 8, with
        contempt); ``None`` = :data:`~fer_lightning.checkpoints.DEFAULT_PHOTO_MODEL`, the better of the two on
        real photos (JAFFE). Other arguments as :meth:`from_checkpoint`."""
        name = DEFAULT_PHOTO_MODEL if name is None else name
        if name not in PRETRAINED:
            raise InputError(f"no shipped weights named {name!r}: choose one of {', '.join(PRETRAINED)}")
        return cls.from_checkpoint(PRETRAINED[name], detector, **kwargs)

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
        """Boxes (largest first) and their 48x48 gray crops (:meth:`crop`: aligned when the predictor has an
        ``aligner``, else cut with the detector's margin, as in preprocessing).

        The detector gets the image in colour (MTCNN uses it; dlib and Haar convert to gray themselves)."""
        boxes = self.detector.detect(image, bgr)
        gray = to_gray(image, bgr) if boxes else None
        return boxes, [self.crop(gray, box) for box in boxes]

    def crop(self, gray: np.ndarray, box: Box) -> np.ndarray:
        """The 48x48 crop of the face in ``box``: eyes levelled at FER2013's framing when the predictor has an
        ``aligner`` that finds them (``faces.align``), else the box grown by the detector's margin."""
        return framed_crop(gray, box, self.detector.margin, self.aligner)[0]

    def classify(self, crops: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """(N, classes) probabilities for 48x48 gray face crops (an (N, 48, 48) array or a sequence of
        (48, 48) arrays, uint8 or as :func:`as_uint8_image` accepts), ``batch_size`` faces per forward
        pass."""
        faces = torch.from_numpy(crop_batch(crops))
        if len(faces) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        threads = self._threads_for(len(faces))
        if self.runtime is not None:
            logits = self.runtime.predict_logits(faces, self.batch_size, threads)
        else:
            with intra_op_threads(threads):
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

    def predict_video(
        self,
        source: str | int | Path,
        detect_every: int = 5,
        smooth_window: int = 5,
        tracker: str = "correlation",
        **options,
    ) -> Iterable:  # of fer_lightning.video.FrameResult, imported lazily below
        """Per-frame :class:`~fer_lightning.video.FrameResult` objects for a video file (path) or camera
        (index), as frames are read::

            for frame in predictor.predict_video("clip.mp4"):
                frame.index, frame.time, [(f.track_id, f.box, f.label) for f in frame.faces]

        Faces are detected every ``detect_every`` frames and followed by ``tracker`` in between; every
        tracked face is classified on every frame, its probabilities averaged over its last ``smooth_window``
        frames. ``options``: ``min_iou``, ``max_missed``, ``min_track_quality``, ``max_frames`` (see
        :func:`fer_lightning.video.pipeline.predict_frames`, where the logic lives).
        """
        from fer_lightning.video.pipeline import predict_frames  # lazy: photo-only users never load it

        return predict_frames(self, source, detect_every, smooth_window, tracker, **options)

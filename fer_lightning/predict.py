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

from fer_lightning.checkpoints import DEFAULT_PHOTO_MODEL, load_network
from fer_lightning.faces.align import FaceAligner, framed_crop
from fer_lightning.faces.detectors import Box, FaceDetector
from fer_lightning.faces.fallback import FaceFinder
from fer_lightning.images import load_photo, to_gray
from fer_lightning.errors import ConfigError, InputError
from fer_lightning.inference import crop_batch, log_prior_for, predict_logits
from fer_lightning.pretrained import INFERENCE_KEYS, inference_settings
from fer_lightning.onnx_backend import OnnxNetwork, check_backend
from fer_lightning.utils.devices import resolve_device
from fer_lightning.utils.threads import intra_op_threads

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


class Predictor:
    """Face detector + classifier. ``predict`` handles one photo; ``predict_many`` classifies the faces of
    many photos in shared batches of ``batch_size`` (one forward pass per batch instead of one per face).

    ``num_threads``: torch intra-op threads while classifying on the CPU; ``"auto"`` = 1 for batches of up to
    :data:`SMALL_BATCH` faces (latency), torch's setting for larger ones (throughput); ``None`` = never change
    it. With ``backend="onnxruntime"`` the same rule picks ONNX Runtime's intra-op threads.

    ``aligner``: a :class:`~fer_lightning.faces.align.FaceAligner` levels the eyes and frames each face as
    FER2013 does (``"default"``: a ``FaceAligner()``, as the scripts use); ``None`` cuts the detector's box as
    it is.

    ``backend``: ``"torch"`` runs ``net`` eagerly; ``"onnxruntime"`` exports it in memory and runs it in ONNX
    Runtime on the CPU (``net`` may then also be an :class:`~fer_lightning.onnx_backend.OnnxNetwork` read from
    an ``.onnx`` file). ``self.net`` is the torch network whenever there is one (Grad-CAM reads it).

    ``tta="hflip"`` averages each face's log-probabilities with its mirror image's. ``logit_adjustment`` (tau)
    subtracts tau x log(class prior) from them: a network trained on FER2013 leans towards its frequent
    classes (happy, neutral) and away from rare ones (disgust), which photos do not share. ``class_prior``:
    counts or probabilities per class; ``None`` = FER2013's Training counts (7-class networks only). Weights
    files may carry their own settings (``meta.inference``): :meth:`from_checkpoint` uses them unless told
    otherwise.
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
        aligner: FaceAligner | None | str = "default",
        tta: str | None = None,
        logit_adjustment: float = 0.0,
        class_prior: Sequence[float] | None = None,
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
        self.detector = detector if detector is not None else FaceFinder()
        # the scripts' default too: the Python API and the CLI frame faces alike
        self.aligner = FaceAligner() if aligner == "default" else aligner
        self.batch_size = int(batch_size)
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size must be a positive number of faces, got {batch_size!r}")
        if tta not in (None, "none", "hflip"):
            raise ConfigError(f"tta must be None or 'hflip' for photos, got {tta!r}")
        self.tta = None if tta == "none" else tta
        self.logit_adjustment = float(logit_adjustment)
        self.class_prior = None if class_prior is None else [float(c) for c in class_prior]
        self.source: str | Path | None = None  # the file the network came from (save_pretrained reads it)
        self.log_prior = log_prior_for(self.classes, class_prior) if self.logit_adjustment else None

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path | None = None,
        detector: FaceDetector | None = None,
        batch_size: int = 256,
        device: str | torch.device = "cpu",
        num_threads: int | str | None = "auto",
        backend: str = "torch",
        aligner: FaceAligner | None | str = "default",
        **inference: Any,
    ) -> Predictor:
        """From a Lightning ``.ckpt``, a weights file (``None``: the shipped weights) or an ``.onnx`` file
        made by ``scripts/export.py`` (which implies ``backend="onnxruntime"``); default detector
        :class:`~fer_lightning.faces.fallback.FaceFinder` (dlib, with the face-crop fallback). With
        ``backend="onnxruntime"`` a torch network is exported in memory."""
        check_backend(backend)  # before the checkpoint is read
        if path is not None and Path(path).suffix.lower() == ".onnx":
            backend = "onnxruntime"  # an ONNX file runs in ONNX Runtime whatever the default backend is
            runtime = OnnxNetwork.from_file(path)
            stored = runtime.metadata.get("inference")
            stored = (
                {k: v for k, v in stored.items() if k in INFERENCE_KEYS} if isinstance(stored, dict) else {}
            )
            inference = {**stored, **inference}
            return cls(
                runtime,
                runtime.classes,
                detector,
                batch_size,
                device,
                num_threads,
                backend,
                aligner,
                **inference,
            )
        net, classes = load_network(path, device=device)
        inference = {**inference_settings(path), **inference}  # the caller's choice wins over the file's
        predictor = cls(
            net, classes, detector, batch_size, device, num_threads, backend, aligner, **inference
        )
        predictor.source = path if path is not None else None
        return predictor

    @classmethod
    def from_pretrained(
        cls, name: str | Path | None = None, detector: FaceDetector | None = None, **kwargs: Any
    ) -> Predictor:
        """Shipped weights by name (``"photos"``, ``"fer2013"``, ``"ferplus"``: :data:`PRETRAINED`), a weights
        or checkpoint file, or a folder written by :meth:`save_pretrained`; ``None`` =
        :data:`~fer_lightning.checkpoints.DEFAULT_PHOTO_MODEL`. Other arguments as :meth:`from_checkpoint`."""
        from fer_lightning.pretrained import resolve_pretrained

        return cls.from_checkpoint(
            resolve_pretrained(DEFAULT_PHOTO_MODEL if name is None else name), detector, **kwargs
        )

    def save_pretrained(self, folder: str | Path) -> Path:
        """``folder/weights.pt`` (this predictor's network and inference settings), ``config.json`` and a
        ``README.md`` card; :meth:`from_pretrained` loads the folder back (``fer_lightning.pretrained``)."""
        from fer_lightning.pretrained import save_pretrained

        return save_pretrained(self, folder)

    def _threads_for(self, faces: int) -> int | None:
        if self.device.type != "cpu":
            return None
        if self.num_threads == "auto":
            return 1 if faces <= SMALL_BATCH else None
        return self.num_threads

    #: (uint8 image, whether it is BGR) from a path or a numpy image in ``color`` (:func:`load_photo`)
    load_image = staticmethod(load_photo)

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
        views = [faces, faces.flip(-1)] if self.tta == "hflip" else [faces]
        threads = self._threads_for(len(faces) * len(views))
        log_probs = torch.stack([self._logits(view, threads).log_softmax(1) for view in views]).mean(0)
        if self.log_prior is not None:
            log_probs = log_probs - self.logit_adjustment * self.log_prior
        return log_probs.softmax(1).numpy()

    def _logits(self, faces: torch.Tensor, threads: int | None) -> torch.Tensor:
        if self.runtime is not None:
            return self.runtime.predict_logits(faces, self.batch_size, threads)
        with intra_op_threads(threads):
            return predict_logits(self.net, faces, self.batch_size, self.device)

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

"""MTCNN face detector backend (facenet-pytorch): optional, because that package pins an older torch.

Install beside this project with ``pip install --no-deps facenet-pytorch requests``; without it, selecting
``detector=mtcnn`` fails on first use with :class:`DetectorUnavailableError` saying exactly that.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fer_lightning.faces.detectors import Box, DetectorUnavailableError, FaceDetector
from fer_lightning.utils.threads import intra_op_threads


class MTCNNDetector(FaceDetector):
    """facenet-pytorch's MTCNN (``score`` = face probability). Optional: ``pip install facenet-pytorch``."""

    name = "mtcnn"
    needs_color = True

    def __init__(
        self,
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] | list[float] = (0.6, 0.7, 0.7),
        min_score: float = 0.9,
        device: str = "cpu",
        margin: float = 0.0,
        max_side: int = 1024,
    ) -> None:
        super().__init__(margin, max_side)
        self.min_face_size, self.min_score, self.device = int(min_face_size), float(min_score), str(device)
        self.thresholds = tuple(float(t) for t in thresholds)

    def _params(self) -> dict[str, Any]:
        return {
            "min_face_size": self.min_face_size,
            "thresholds": list(self.thresholds),
            "min_score": self.min_score,
        }

    def _load(self) -> Any:
        try:
            from facenet_pytorch import MTCNN
        except ImportError as e:
            raise DetectorUnavailableError(
                f"detector=mtcnn needs the optional package facenet-pytorch, which failed to import ({e}). "
                "Install it with `pip install --no-deps facenet-pytorch requests` (plain `pip install` would "
                "replace this project's torch with the older one it pins), or use detector=dlib."
            ) from e
        return MTCNN(
            keep_all=True,
            min_face_size=self.min_face_size,
            thresholds=list(self.thresholds),
            device=self.device,
        )

    def _find(self, image: np.ndarray) -> list[Box]:
        if (
            min(image.shape[:2]) < self.min_face_size
        ):  # MTCNN's image pyramid would be empty and torch.cat fail
            return []
        # One intra-op thread unless told otherwise: MTCNN's nets are tiny, and with two threads on a busy
        # 2-core machine a call went from ~40 ms to ~2 s (the thread pool waits for a core) in our
        # measurements.
        with intra_op_threads(self.threads or 1):
            boxes, probs = self.model.detect(image)
        if boxes is None:
            return []
        return [
            Box(math.floor(x0), math.floor(y0), math.ceil(x1 - x0), math.ceil(y1 - y0), float(p))
            for (x0, y0, x1, y1), p in zip(boxes, probs)
            if p >= self.min_score
        ]

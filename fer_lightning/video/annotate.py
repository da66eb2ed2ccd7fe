"""The annotated output video: each face's box, track id and label drawn on the frame, written to a temporary
file beside the target and renamed only when the whole video is done."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from fer_lightning.errors import ConfigError
from fer_lightning.utils.io import atomic_path
from fer_lightning.video.pipeline import TrackedFace

# codecs OpenCV's bundled FFmpeg writes without extra libraries; the file suffix picks one
CODECS = {".mp4": "mp4v", ".avi": "MJPG"}
# a colour per track id (BGR), so one face keeps one colour through the video
PALETTE = [(0, 200, 0), (0, 160, 255), (255, 120, 0), (200, 0, 200), (0, 220, 220), (255, 255, 0)]


def draw_faces(frame: np.ndarray, faces: Sequence[TrackedFace]) -> np.ndarray:
    """A copy of the BGR ``frame`` with '#id label p%' over each face's box. Not ``tasks/predict.py``'s
    ``annotate``: that one draws RGB photos without track ids, and converting every frame twice costs
    more than drawing."""
    canvas = frame.copy()
    scale = max(canvas.shape[:2]) / 640  # readable on small and HD frames alike
    thick, font = max(1, round(2 * scale)), max(0.4, 0.6 * scale)
    for face in faces:
        b, color = face.box, PALETTE[(face.track_id - 1) % len(PALETTE)]
        cv2.rectangle(canvas, (b.x, b.y), (b.x + b.w, b.y + b.h), color, thick)
        text = f"#{face.track_id} {face.label} {face.confidence:.0%}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        y = b.y - 4 if b.y - th - base - 4 >= 0 else b.y + b.h + th + 4  # below the box at the top edge
        cv2.rectangle(canvas, (b.x, y - th - base), (b.x + tw, y + base), (0, 0, 0), -1)
        cv2.putText(canvas, text, (b.x, y), cv2.FONT_HERSHEY_SIMPLEX, font, color, thick, cv2.LINE_AA)
    return canvas


@contextmanager
def video_writer(path: str | Path, fps: float, size: tuple[int, int]) -> Iterator[cv2.VideoWriter]:
    """A ``cv2.VideoWriter`` on a temporary file in ``path``'s folder; the file replaces ``path`` when the
    block succeeds and is removed when it fails, so a failed run leaves no half-written video."""
    path = Path(path)
    if path.suffix.lower() not in CODECS:
        raise ConfigError(f"annotated video {path.name}: the name must end in one of {sorted(CODECS)}")
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*CODECS[path.suffix.lower()]), fps, size)
        if not writer.isOpened():
            raise ConfigError(f"cannot write a {size[0]}x{size[1]} video at {fps:g} fps to {path}")
        try:
            yield writer
        finally:
            writer.release()  # before the rename: release writes the index that makes the file playable

"""Video → per-frame results: detect every ``detect_every`` frames, track in between, classify every tracked
face on every frame through the :class:`~fer_lightning.predict.Predictor`, smooth per track.

Why not detect on every frame: dlib HOG on a 640x480 frame costs ~30-45 ms on this project's 2-core CPU,
the correlation tracker ~6 ms per face, so detecting every 5th frame is what lets a single face run at camera
rate (``benchmarks/bench_video.py``). Detection stays the authority: each run of it re-places every
matched track on the detector's box, so the crops the network sees on those frames are exactly
``Predictor.predict``'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from fer_lightning.errors import ConfigError
from fer_lightning.faces.detectors import Box
from fer_lightning.video.source import VideoSource, open_video
from fer_lightning.video.tracking import FaceTracks

if TYPE_CHECKING:  # predict.py imports this module lazily, inside Predictor.predict_video
    from fer_lightning.predict import Predictor


@dataclass(frozen=True)
class TrackedFace:
    """One face on one frame: its track id (stable while the face stays in view), box, and class
    probabilities smoothed over the track's last ``smooth_window`` frames."""

    track_id: int
    box: Box
    probabilities: dict[str, float]
    detected: bool  # the box came from the detector on this frame (else from the tracker)

    @property
    def label(self) -> str:
        return max(self.probabilities, key=self.probabilities.__getitem__)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]


@dataclass(frozen=True)
class FrameResult:
    """One frame: its index, time in seconds, the faces on it (by track id; ``[]`` when none) and the BGR
    frame itself (for drawing)."""

    index: int
    time: float
    faces: list[TrackedFace]
    image: np.ndarray = field(repr=False, compare=False)


def predict_frames(
    predictor: Predictor,
    source: VideoSource | str | int | Path,
    detect_every: int = 5,
    smooth_window: int = 5,
    tracker: str = "correlation",
    min_iou: float = 0.3,
    max_missed: int = 1,
    min_track_quality: float = 7.0,
    max_frames: int | None = None,
) -> Iterator[FrameResult]:
    """One :class:`FrameResult` per frame of ``source`` (an open :class:`VideoSource`, a file path, or a
    camera index), as the frames are read; at most ``max_frames`` of them (``None``: to the end).

    Settings are checked, and a source given by path or index is opened (raising :class:`InputError` if it
    cannot be), before this returns; such a source is released when the iteration ends or is abandoned, while
    an open :class:`VideoSource` is left to its owner.
    """
    if not isinstance(detect_every, int) or isinstance(detect_every, bool) or detect_every < 1:
        raise ConfigError(f"detect_every must be a whole number of frames >= 1, got {detect_every!r}")
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"max_frames must be >= 1 or null (the whole video), got {max_frames}")
    tracks = FaceTracks(tracker, smooth_window, min_iou, max_missed, min_track_quality)
    owned = not isinstance(source, VideoSource)
    video = open_video(source) if owned else source
    return _frames(predictor, video, owned, tracks, detect_every, max_frames)


def _frames(
    predictor: Predictor,
    video: VideoSource,
    owned: bool,
    tracks: FaceTracks,
    detect_every: int,
    max_frames: int | None,
) -> Iterator[FrameResult]:
    try:
        for n, frame in enumerate(video):
            if max_frames is not None and n >= max_frames:
                break
            gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)  # trackers and crops both work in gray
            if n % detect_every == 0:
                boxes, crops = predictor.detect(frame.image, bgr=True)
                alive = tracks.detected(gray, boxes)
                live = [track for track, _ in alive]
                detected = [di is not None for _, di in alive]
                crops = [crops[di] if di is not None else predictor.crop(gray, t.box) for t, di in alive]
            else:
                live = tracks.follow(gray)
                detected = [False] * len(live)
                crops = [predictor.crop(gray, track.box) for track in live]
            probs = predictor.classify(crops)
            faces = [
                TrackedFace(
                    track.id, track.box, dict(zip(predictor.classes, map(float, track.smoother.add(p)))), d
                )
                for track, p, d in zip(live, probs, detected)
            ]
            yield FrameResult(frame.index, frame.time, sorted(faces, key=lambda f: f.track_id), frame.image)
    finally:
        if owned:
            video.close()

"""Face tracks between detections: a visual tracker per face, detections matched to tracks by IoU so a face
keeps its id.

Trackers (``tracker=``), both from libraries the project already has and neither needing model files:

- ``correlation`` (default): dlib's ``correlation_tracker`` (DSST: a correlation filter with scale
  estimation). Its peak-to-sidelobe ratio says when it has lost the face: ~13-27 on a face, ~3 once the face
  is gone (measured on JAFFE photos on a 640x480 canvas), hence ``min_quality=7``. ~6 ms per face per frame.
- ``mil``: OpenCV's ``TrackerMIL``, the one ``opencv-python-headless`` tracker that needs no downloaded
  network. 50-100 ms per face per frame on the same video, and it has no confidence to notice a lost face:
  when the face vanished from the test video it drifted over the empty background until the next detection.
  Kept for comparison (``benchmarks/bench_video.py``), not recommended.

OpenCV's other trackers in this build (GOTURN, DaSiamRPN, Nano, Vit) need downloaded networks, and KCF, CSRT
and MOSSE live only in the opencv-contrib packages, which this project does not install.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import dlib
import numpy as np

from fer_lightning.errors import ConfigError
from fer_lightning.faces.detectors import Box
from fer_lightning.video.smoothing import ProbabilitySmoother


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not overlap)."""
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / (a.area + b.area - inter)


def match_boxes(tracked: list[Box], detected: list[Box], min_iou: float) -> list[tuple[int, int]]:
    """(track, detection) index pairs, best overlap first, each side used once, overlap at least
    ``min_iou``. Greedy rather than an optimal assignment: with a handful of faces that do not overlap each
    other, the two agree."""
    pairs = sorted(
        ((iou(t, d), ti, di) for ti, t in enumerate(tracked) for di, d in enumerate(detected)), reverse=True
    )
    used_t, used_d, matches = set(), set(), []
    for overlap, ti, di in pairs:
        if overlap < min_iou:
            break
        if ti not in used_t and di not in used_d:
            used_t.add(ti)
            used_d.add(di)
            matches.append((ti, di))
    return matches


class CorrelationTracker:
    """dlib's DSST correlation tracker on the gray frame; ``update`` gives ``None`` once its
    peak-to-sidelobe ratio falls below ``min_quality`` (the face has left or is hidden)."""

    def __init__(self, min_quality: float = 7.0) -> None:
        self.min_quality = float(min_quality)
        self._tracker = dlib.correlation_tracker()

    def start(self, gray: np.ndarray, box: Box) -> None:
        self._tracker.start_track(gray, dlib.rectangle(box.x, box.y, box.x + box.w, box.y + box.h))

    def update(self, gray: np.ndarray) -> Box | None:
        if self._tracker.update(gray) < self.min_quality:
            return None
        p = self._tracker.get_position()
        return _frame_box(p.left(), p.top(), p.width(), p.height(), gray)


class MILTracker:
    """OpenCV's ``TrackerMIL`` on the gray frame; ``None`` only when OpenCV itself reports failure."""

    def __init__(self, min_quality: float = 0.0) -> None:
        del min_quality  # MIL reports no confidence to compare with
        self._tracker = cv2.TrackerMIL.create()

    def start(self, gray: np.ndarray, box: Box) -> None:
        self._tracker.init(gray, (box.x, box.y, box.w, box.h))

    def update(self, gray: np.ndarray) -> Box | None:
        ok, (x, y, w, h) = self._tracker.update(gray)
        return _frame_box(x, y, w, h, gray) if ok else None


TRACKERS = {"correlation": CorrelationTracker, "mil": MILTracker}


def _frame_box(x: float, y: float, w: float, h: float, gray: np.ndarray) -> Box | None:
    """The tracker's box in whole pixels, clipped to the frame; ``None`` when less than a quarter of it is
    left inside (the face has left the frame)."""
    box = Box(round(x), round(y), round(w), round(h))
    inside = box.clipped(gray.shape[1], gray.shape[0])
    return inside if box.area > 0 and inside.area * 4 >= box.area else None


@dataclass
class Track:
    """One face followed through the video: its id, where it is now, its tracker and its smoothed
    probabilities."""

    id: int
    box: Box
    tracker: CorrelationTracker | MILTracker = field(repr=False)
    smoother: ProbabilitySmoother = field(repr=False)
    missed: int = 0  # detection rounds in a row that did not find this face


class FaceTracks:
    """The live tracks of one video. Call :meth:`detected` on frames the detector ran on and :meth:`follow`
    on the others; each returns the tracks alive on that frame, with their box there.

    A detection that overlaps a track (IoU ≥ ``min_iou``) moves it onto the detected box (and restarts its
    tracker there, so tracker drift never outlives one detection interval); one that overlaps none starts a
    new track with the next id. A track the detector misses survives ``max_missed`` such rounds on its
    tracker alone (detectors miss a turned head now and then; a new id each time would split one face into
    several), and ends at once when its tracker loses the face.
    """

    def __init__(
        self,
        tracker: str = "correlation",
        smooth_window: int = 5,
        min_iou: float = 0.3,
        max_missed: int = 1,
        min_quality: float = 7.0,
    ) -> None:
        if tracker not in TRACKERS:
            raise ConfigError(f"tracker must be one of {sorted(TRACKERS)}, got {tracker!r}")
        if not 0.0 < min_iou <= 1.0:
            raise ConfigError(f"min_iou must be in (0, 1], got {min_iou}")
        if max_missed < 0:
            raise ConfigError(f"max_missed must be >= 0 detection rounds, got {max_missed}")
        ProbabilitySmoother(smooth_window)  # checks the window before any frame is read
        self.tracker, self.smooth_window = tracker, int(smooth_window)
        self.min_iou, self.max_missed, self.min_quality = float(min_iou), int(max_missed), float(min_quality)
        self.tracks: list[Track] = []
        self.next_id = 1

    def detected(self, gray: np.ndarray, boxes: list[Box]) -> list[tuple[Track, int | None]]:
        """Tracks alive after a detection on ``gray``, each paired with the index of its detection in
        ``boxes`` (``None``: kept on its tracker alone)."""
        matches = dict(match_boxes([t.box for t in self.tracks], boxes, self.min_iou))
        alive: list[tuple[Track, int | None]] = []
        for ti, track in enumerate(self.tracks):
            if ti in matches:
                track.box, track.missed = boxes[matches[ti]], 0
                track.tracker.start(gray, track.box)
                alive.append((track, matches[ti]))
            elif track.missed < self.max_missed and (box := track.tracker.update(gray)) is not None:
                track.box, track.missed = box, track.missed + 1
                alive.append((track, None))
        for di in sorted(set(range(len(boxes))) - set(matches.values())):
            track = Track(
                self.next_id,
                boxes[di],
                TRACKERS[self.tracker](self.min_quality),
                ProbabilitySmoother(self.smooth_window),
            )
            track.tracker.start(gray, track.box)
            self.next_id += 1
            alive.append((track, di))
        self.tracks = [t for t, _ in alive]
        return alive

    def follow(self, gray: np.ndarray) -> list[Track]:
        """Tracks alive on a frame the detector skipped, each moved to where its tracker found the face."""
        alive = []
        for track in self.tracks:
            box = track.tracker.update(gray)
            if box is not None:
                track.box = box
                alive.append(track)
        self.tracks = alive
        return alive

"""Frames from a video file or a camera, with one clear :class:`InputError` for each way opening can fail.

``open_video`` reads the first frame before returning, so a file that opens but holds no frame fails here,
before a model is loaded or an output file is started.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer_lightning.errors import InputError

log = logging.getLogger(__name__)

# FFmpeg prints its own lines ("moov atom not found") for files it cannot parse; the InputError below says
# the same thing once. A user's own setting wins.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
#: frames decoded ahead of the one being processed (a few: a camera's frames should not wait long in line)
READ_AHEAD = 4


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its position in the stream, seconds from the start, and the BGR pixels."""

    index: int
    time: float
    image: np.ndarray = field(repr=False, compare=False)


def camera_index(source: str | int | Path) -> int | None:
    """The camera index ``source`` names (an int, or a string of digits such as Hydra's ``input=0``), else
    ``None`` (a file path)."""
    if isinstance(source, bool):
        return None
    if isinstance(source, int):
        return source
    text = str(source).strip()
    return (
        int(text) if text.lstrip("-").isdigit() and text.count("-") <= 1 and not text.endswith("-") else None
    )


class VideoSource:
    """An opened video file or camera; iterate for :class:`Frame` objects, close (or use ``with``) to release
    the device.

    Times: a file's frames are ``index / fps`` seconds in (the file's own clock, however fast it is
    processed); a camera's are wall-clock seconds since it was opened, because a camera's nominal frame rate
    rarely matches what it delivers.
    """

    def __init__(self, capture: cv2.VideoCapture, name: str, is_camera: bool, first: np.ndarray) -> None:
        self.capture, self.name, self.is_camera = capture, name, is_camera
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 0.0
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if not is_camera else 0
        self.frame_count: int | None = count if count > 0 else None  # what the header announces, if anything
        self.size = (first.shape[1], first.shape[0])  # (width, height), as cv2.VideoWriter wants it
        self._first: np.ndarray | None = first
        self._started = time.monotonic()
        self._stop = threading.Event()  # ends the read-ahead thread
        self._reader: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"VideoSource({self.name!r}, {self.size[0]}x{self.size[1]}, fps={self.fps:g})"

    def _time(self, index: int) -> float:
        if self.is_camera:
            return time.monotonic() - self._started
        if self.fps:
            return index / self.fps
        return self.capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0  # no frame rate in the header

    def __iter__(self) -> Iterator[Frame]:
        if self._first is None:
            raise InputError(f"{self.name}: this video was already read; open it again")
        first, self._first = self._first, None
        yield Frame(0, self._time(0), first)
        index = 1
        for image, seconds in self._read_ahead():
            yield Frame(index, seconds, image)
            index += 1
        if self.frame_count and index < self.frame_count:
            # a truncated or damaged file: what could be decoded is kept, and said
            log.warning(
                "%s: decoded %d of the %d frames its header announces", self.name, index, self.frame_count
            )

    def _read_ahead(self) -> Iterator[tuple[np.ndarray, float]]:
        """(frame, time) for the frames after the first, decoded by a background thread up to
        :data:`READ_AHEAD` frames ahead. OpenCV releases the GIL while it decodes, so the next frame is
        decoded on another core while this one is processed (~1.2 ms of ~16 ms per 640x480 frame)."""
        ready: queue.Queue = queue.Queue(maxsize=READ_AHEAD)
        stop = self._stop

        def read() -> None:
            index = 1
            while not stop.is_set():
                try:
                    ok, image = self.capture.read()
                    item = (image, self._time(index)) if ok else None  # the time as the frame is read
                except Exception as e:  # handed to the consumer, which raises it
                    item, ok = e, False
                while not stop.is_set():  # a bounded put, so an abandoned iteration ends this thread
                    try:
                        ready.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        pass
                if not ok:
                    return
                index += 1

        self._reader = threading.Thread(target=read, name=f"read {self.name}", daemon=True)
        self._reader.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self._stop_reading()

    def _stop_reading(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.join()  # before the capture can be released under it

    def close(self) -> None:
        """Release the file or camera (after stopping the read-ahead thread, also mid-iteration)."""
        self._stop_reading()
        self.capture.release()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_video(source: str | int | Path) -> VideoSource:
    """A video file (path) or camera (index: ``0``, ``"1"``) opened, its first frame read.

    :class:`InputError` for a missing path, a folder, an empty file, a file FFmpeg cannot decode, a file
    without a frame, and a camera that does not open or gives no frame.
    """
    index = camera_index(source)
    if index is not None and index < 0:  # OpenCV's "any camera" -1 crashes its V4L2 backend: never pass it on
        raise InputError(
            f"input={source}: camera indexes start at 0 (OpenCV's -1 for 'any camera' is not supported); "
            "give input=0 for the first camera"
        )
    if index is not None:
        return _open_camera(index)
    path = Path(str(source)).expanduser()
    name = f"input={source}"
    if not path.exists():
        raise InputError(f"{name}: no such file; give a video file or a camera index such as input=0")
    if path.is_dir():
        raise InputError(f"{name}: is a folder; give one video file (for photos use scripts/predict.py)")
    if path.stat().st_size == 0:
        raise InputError(f"{name}: the file is empty (0 bytes), not a video")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(f"{name}: not a video OpenCV can decode (unknown format, or a damaged file)")
    ok, first = capture.read()
    if not ok or first is None:
        capture.release()
        raise InputError(f"{name}: the video holds no readable frame")
    return VideoSource(capture, str(path), False, first)


def _open_camera(index: int) -> VideoSource:
    name = f"input={index}"
    # quiet OpenCV's own warnings while probing: the InputError below is the one line that explains
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        capture = cv2.VideoCapture(index)
    finally:
        cv2.utils.logging.setLogLevel(previous)
    if not capture.isOpened():
        raise InputError(
            f"{name}: camera {index} could not be opened (no such device, or another program holds it); "
            "list the cameras with `ls /dev/video*`, or give a video file"
        )
    ok, first = capture.read()
    if not ok or first is None:
        capture.release()
        raise InputError(f"{name}: camera {index} opened but delivered no frame")
    return VideoSource(capture, f"camera {index}", True, first)

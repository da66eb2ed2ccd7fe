"""Predictor.predict_video and fer_lightning/video/ on videos built from the real JAFFE photos: each photo
held for several frames (drifting a pixel per frame), with face-less frames between them."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_lightning.errors import ConfigError, InputError
from fer_lightning.faces.detectors import Box
from fer_lightning.images import read_image, to_gray
from fer_lightning.predict import Predictor
from fer_lightning.video import FrameResult, open_video
from fer_lightning.video.annotate import video_writer
from fer_lightning.video.source import camera_index
from fer_lightning.video.tracking import iou, match_boxes

SIZE = (304, 288)  # (width, height): room for a 256x256 photo to drift by 14 x 7 px
# (photo, frames): two faces, each appearing on a frame the detector runs on (detect_every=5), then gone
SEGMENTS = [("KA.HA1.29.tiff", 15), (None, 5), ("KL.SU1.164.tiff", 10), (None, 5)]


def write_video(path: Path, photos_dir: Path, segments, size=SIZE, fps: float = 10.0) -> Path:
    """``segments`` of (photo name or list of names side by side, or None for an empty frame, frame count),
    each photo on a grey canvas and moving right by 1 px and down by 1 px every 2 frames."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    for names, count in segments:
        names = [] if names is None else [names] if isinstance(names, str) else names
        faces = [to_gray(read_image(photos_dir / name)) for name in names]
        for i in range(count):
            canvas = np.full((size[1], size[0], 3), 110, np.uint8)
            for k, face in enumerate(faces):
                x, y = 10 + k * 300 + i, 10 + i // 2
                canvas[y : y + face.shape[0], x : x + face.shape[1]] = face[..., None]
            writer.write(canvas)
    writer.release()
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT) == sum(n for _, n in segments)
    return path


def decoded_frames(path: Path) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(path)), []
    while (read := capture.read())[0]:
        frames.append(read[1])
    return frames


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.from_checkpoint()  # the shipped weights: real labels, no training needed


@pytest.fixture(scope="module")
def video(jaffe_dir, tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "two_faces.mp4", jaffe_dir, SEGMENTS)


@pytest.fixture(scope="module")
def every_frame(predictor, video) -> list[FrameResult]:
    """The reference run: the detector on every frame, no smoothing."""
    return list(predictor.predict_video(video, detect_every=1, smooth_window=1))


def test_every_frame_equals_predictor_predict_with_detection_on_every_frame(predictor, video, every_frame):
    results = every_frame
    frames = decoded_frames(video)
    assert [r.index for r in results] == list(range(len(frames))) == list(range(35))
    assert isinstance(results[0], FrameResult) and results[1].time == pytest.approx(0.1)
    for result, frame in zip(results, frames):
        expected = predictor.predict(frame, color="bgr")
        assert [f.box for f in result.faces] == [f.box for f in expected]
        for face, same in zip(result.faces, expected):
            assert face.label == same.label
            assert list(face.probabilities.values()) == pytest.approx(
                list(same.probabilities.values()), abs=1e-6
            )
    with_face = [r.index for r in results if r.faces]
    assert with_face == [*range(0, 15), *range(20, 30)]


def test_tracking_between_detections_keeps_ids_and_follows_the_face(predictor, video, every_frame):
    every = every_frame
    tracked = list(predictor.predict_video(video, detect_every=5, smooth_window=1))
    ids = [[f.track_id for f in r.faces] for r in tracked]
    # one id while a face stays, a new one for the next face; the tracker notices each face leaving
    assert ids == [[1]] * 15 + [[]] * 5 + [[2]] * 10 + [[]] * 5
    for mine, reference in zip(tracked, every):
        if not mine.faces:
            continue
        face, truth = mine.faces[0], reference.faces[0]
        assert face.detected == (mine.index % 5 == 0)
        if face.detected:  # the detector's own box, hence Predictor.predict's crop and probabilities
            assert face.box == truth.box and face.probabilities == truth.probabilities
        else:
            assert iou(face.box, truth.box) > 0.6, (mine.index, face.box, truth.box)
    agree = np.mean([m.faces[0].label == r.faces[0].label for m, r in zip(tracked, every) if m.faces])
    assert agree >= 0.8


def test_smoothing_is_the_mean_over_the_window_per_track(predictor, video):
    raw = list(predictor.predict_video(video, detect_every=5, smooth_window=1))
    smooth = list(predictor.predict_video(video, detect_every=5, smooth_window=4))
    history: dict[int, list[list[float]]] = {}
    for r, s in zip(raw, smooth):
        assert [f.box for f in r.faces] == [f.box for f in s.faces]  # smoothing never moves a box
        for f, g in zip(r.faces, s.faces):
            history.setdefault(f.track_id, []).append(list(f.probabilities.values()))
            expected = np.mean(history[f.track_id][-4:], axis=0)
            assert list(g.probabilities.values()) == pytest.approx(expected, abs=1e-9)
            assert g.label == list(g.probabilities)[int(np.argmax(expected))]


def test_two_faces_side_by_side_keep_their_own_ids(predictor, jaffe_dir, tmp_path):
    path = write_video(
        tmp_path / "pair.mp4", jaffe_dir, [(["KM.NE1.1.tiff", "MK.AN1.125.tiff"], 12)], size=(640, 300)
    )
    results = list(predictor.predict_video(path, detect_every=3, smooth_window=3))
    assert [[f.track_id for f in r.faces] for r in results] == [[1, 2]] * 12
    for r in results:
        left, right = r.faces
        assert left.box.x + left.box.w < right.box.x  # each id stays on its own face


def test_iou_matching_pairs_each_detection_with_the_overlapping_track():
    a, b = Box(0, 0, 100, 100), Box(300, 0, 100, 100)
    assert iou(a, a) == 1 and iou(a, b) == 0 and iou(a, Box(50, 0, 100, 100)) == pytest.approx(1 / 3)
    moved = [Box(305, 4, 100, 100), Box(500, 0, 50, 50), Box(6, 2, 100, 100)]
    assert sorted(match_boxes([a, b], moved, 0.3)) == [(0, 2), (1, 0)]


def test_bad_settings_fail_before_reading_a_frame(predictor, video):
    for kwargs, message in (
        ({"detect_every": 0}, "detect_every must be"),
        ({"smooth_window": 0}, "smooth_window must be"),
        ({"tracker": "kcf"}, "tracker must be one of"),
        ({"min_iou": 0}, "min_iou must be"),
        ({"max_frames": 0}, "max_frames must be"),
    ):
        with pytest.raises(ConfigError, match=message):
            predictor.predict_video(video, **kwargs)


def test_sources_fail_with_a_clear_reason(tmp_path, video):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("not a video")
    for source, reason in (
        (tmp_path / "missing.mp4", "no such file"),
        (tmp_path, "is a folder"),
        (tmp_path / "empty.mp4", "the file is empty"),
        (tmp_path / "notes.mp4", "not a video OpenCV can decode"),
        (7, "camera 7 could not be opened"),
        (-1, "camera indexes start at 0"),  # OpenCV's "any camera": its V4L2 backend crashes on it
        ("-1", "camera indexes start at 0"),
    ):
        with pytest.raises(InputError, match=reason):
            open_video(source)
    assert camera_index("0") == 0 and camera_index(3) == 3 and camera_index(video) is None
    with open_video(str(video)) as source:
        assert source.size == SIZE and source.fps == 10 and source.frame_count == 35 and not source.is_camera
        assert len(list(source)) == 35
    threads = threading.active_count()
    with open_video(video) as source:  # left mid-video: the read-ahead thread stops with the source
        frames = iter(source)
        assert [next(frames).index for _ in range(3)] == [0, 1, 2]
    assert threading.active_count() == threads


def test_a_truncated_file_keeps_the_frames_before_the_damage(jaffe_dir, tmp_path, caplog):
    avi = tmp_path / "clip.avi"  # MJPG in AVI: frames stay decodable up to the cut
    writer = cv2.VideoWriter(str(avi), cv2.VideoWriter.fourcc(*"MJPG"), 10, SIZE)
    frame = cv2.cvtColor(
        cv2.resize(to_gray(read_image(jaffe_dir / SEGMENTS[0][0])), SIZE), cv2.COLOR_GRAY2BGR
    )
    for _ in range(20):
        writer.write(frame)
    writer.release()
    avi.write_bytes(avi.read_bytes()[: avi.stat().st_size // 2])
    with open_video(avi) as source:
        count = len(list(source))
    assert 0 < count < 20 and "frames its header announces" in caplog.text


def test_the_annotated_video_is_removed_when_the_run_fails(tmp_path):
    target = tmp_path / "annotated.mp4"
    with pytest.raises(RuntimeError, match="stopped"), video_writer(target, 10, SIZE) as writer:
        writer.write(np.zeros((SIZE[1], SIZE[0], 3), np.uint8))
        raise RuntimeError("stopped")
    assert list(tmp_path.iterdir()) == []
